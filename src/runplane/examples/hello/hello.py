"""The demo process: returns a greeting."""


def main(name: str = "world") -> dict[str, str]:
    print(f"greeting {name}")
    return {"greeting": f"Hello, {name}!"}
