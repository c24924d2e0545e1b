"""Refresh demo/web/vendor/onnxruntime-web/ from the npm registry: `python demo/web/refresh_vendor.py`.

The page runs the networks with onnxruntime-web (MIT, Microsoft); the app serves these files
itself, so a visitor's browser never fetches code from anywhere else. This script packs the
pinned VERSION with `npm pack`, checks every file the page needs against SHA256SUMS (committed
beside them) and copies it in. `--check` verifies the committed files without the network;
`--update` (after changing VERSION) rewrites SHA256SUMS from the new package instead.

What the page needs: the WASM bundle and its SIMD, threaded WebAssembly (the CPU execution
provider, one thread or several when the page is cross-origin isolated).
The package ships no licence file; LICENSE here is onnxruntime's MIT licence.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "onnxruntime-web", "1.30.0"
# The WASM build only: the WebGPU build's WebAssembly (ort-wasm-simd-threaded.asyncify.wasm)
# is 25 MiB, over the 16 MiB the project allows a file (a Space keeps such files in LFS).
FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
VENDOR = Path(__file__).resolve().parent / "vendor" / PACKAGE
SUMS = VENDOR / "SHA256SUMS"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected() -> dict[str, str]:
    """{file name: sha256} from SHA256SUMS (`sha256sum` format); its first line names the version."""
    lines = SUMS.read_text().splitlines()
    if lines[0] != f"# {PACKAGE}@{VERSION}":
        raise SystemExit(f"{SUMS} is for {lines[0][2:]}, not {PACKAGE}@{VERSION}: run with --update")
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines[1:])}


def check(folder: Path, sums: dict[str, str]) -> list[str]:
    """The files of FILES in `folder` that are missing or differ from `sums`."""
    return [name for name in FILES if not (folder / name).is_file() or sha256(folder / name) != sums.get(name)]


def refresh(update: bool) -> None:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(Path(work) / f"{PACKAGE}-{VERSION}.tgz") as archive:
            archive.extractall(work, members=[archive.getmember(f"package/dist/{name}") for name in FILES],
                               filter="data")
        packed = Path(work) / "package" / "dist"
        if update:
            SUMS.write_text("\n".join([f"# {PACKAGE}@{VERSION}", *(f"{sha256(packed / n)}  {n}" for n in FILES)]) + "\n")
        if bad := check(packed, expected()):
            raise SystemExit(f"npm's {PACKAGE}@{VERSION} differs from {SUMS.name} in {', '.join(bad)}: not copied")
        for name in FILES:
            shutil.copyfile(packed / name, VENDOR / name)
    print(f"{VENDOR}: {PACKAGE}@{VERSION}, {len(FILES)} files checked", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify the committed files; no network")
    mode.add_argument("--update", action="store_true", help="rewrite SHA256SUMS from the package (new VERSION)")
    args = parser.parse_args()
    if args.check:
        bad = check(VENDOR, expected())
        print(f"{len(FILES) - len(bad)} of {len(FILES)} files match {SUMS}" + (f"; differ: {', '.join(bad)}" if bad else ""),
              file=sys.stderr)
        return 1 if bad else 0
    refresh(args.update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
