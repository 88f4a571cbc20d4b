"""The demo: on first start with an empty database, deploy `hello` to production."""

from __future__ import annotations

import logging

from runplane import bundle as bundles
from runplane.examples import example
from runplane.service import catalog
from runplane.service.context import Context

log = logging.getLogger("runplane.demo")

DEMO_PROCESS = "hello"
DEMO_ENVIRONMENT = "production"


async def install(ctx: Context) -> None:
    """Deploy the demo process if the database holds no process yet."""
    if await catalog.list_processes(ctx, ctx.system()):
        return
    data = bundles.pack_folder(example(DEMO_PROCESS))
    await catalog.upload_version(ctx, ctx.system(), DEMO_PROCESS, data)
    await catalog.deploy(
        ctx,
        ctx.system(),
        DEMO_PROCESS,
        DEMO_ENVIRONMENT,
        version=None,
        input_arguments={},
        invokable=True,
        concurrency_limit=None,
    )
    log.info("deployed the demo process %r to %r", DEMO_PROCESS, DEMO_ENVIRONMENT)


async def is_deployed(ctx: Context) -> bool:
    """True when the demo process is deployed invokable to the demo environment."""
    deps = await catalog.list_deployments(ctx, ctx.system())
    return any(
        d.process_name == DEMO_PROCESS and d.environment_name == DEMO_ENVIRONMENT and d.invokable
        for d in deps
    )


def curl_line(base_url: str, authorization: str) -> str:
    """A one-line curl command that starts the demo and waits for its result.

    `authorization` is the header value as the shell should see it, e.g.
    `'Authorization: Bearer rpt_…'` or `"Authorization: Bearer $RUNPLANE_ADMIN_TOKEN"`.
    """
    return (
        f"curl -s -X POST '{base_url}/api/v1/processes/{DEMO_PROCESS}/executions?wait=10' "
        f"-H {authorization} -H 'Content-Type: application/json' "
        '-d \'{"inputArguments": {"name": "Ada"}}\''
    )
