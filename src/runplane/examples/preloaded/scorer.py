"""Stands in for a robot that imports a heavy library (pandas, a browser driver, an
SDK): importing this module takes a second. With `preload = true` in runplane.toml
each runtime imports it once and forks every execution from there."""

import time

time.sleep(1.0)  # the heavy import
_TABLE = {letter: ord(letter) % 7 for letter in "abcdefghijklmnopqrstuvwxyz"}


def main(text: str = "runplane") -> dict[str, int]:
    score = sum(_TABLE.get(letter, 0) for letter in text.lower())
    print(f"scored {text!r}: {score}")
    return {"score": score}
