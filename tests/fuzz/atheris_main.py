"""One target under atheris (coverage-guided, libFuzzer): `python -m tests.fuzz.atheris_main
TARGET [libFuzzer flags] [corpus dirs]`. Only the framers (`redisgate`) are instrumented, so
coverage guides the fuzzer through the framers, not through the oracles."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["redisgate"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
