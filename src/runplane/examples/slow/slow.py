"""A slow process: prints progress for `seconds` seconds."""

import time


def main(seconds: float = 30, fail: bool = False) -> dict[str, float]:
    started = time.monotonic()
    steps = max(1, int(seconds))
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        print(f"progress {step}/{steps} ({100 * step // steps}%)", flush=True)
    if fail:
        raise RuntimeError("failing on purpose (fail=true)")
    return {"seconds": round(time.monotonic() - started, 3)}
