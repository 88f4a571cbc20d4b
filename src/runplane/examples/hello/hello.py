"""The demo process: returns a greeting."""


def main(name: str = "world") -> dict[str, str]:
    print(f"Hello, {name}!")
    return {"greeting": f"Hello, {name}!"}
