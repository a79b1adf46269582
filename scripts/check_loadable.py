#!/usr/bin/env python3
"""Proves that Lambda runtimes can load the executables of a package, the way the dynamic loader decides it.

  check_loadable.py runtimes layer|forwarder     the runtimes Terraform lists for the extension layer
                                                 (terraform/extension-layer) or runs the forwarder on
                                                 (terraform/forwarder), one per line
  check_loadable.py glibc RUNTIME...             the oldest glibc among those runtimes (what to link against)
  check_loadable.py check --arch x86_64|arm64 PACKAGE RUNTIME...
                                                 PACKAGE is a zip or an executable; exits 1, naming the runtime
                                                 and the symbol, when one of the runtimes could not load an
                                                 executable in it

For every ELF file in the package, `check` reads with objdump (binutils) the libraries it needs (NEEDED), the
symbol versions it requires from them (the version references the loader checks before running anything: one
it does not find is fatal, "version `GLIBC_2.30' not found") and which symbols need each version, and compares
them with what each runtime's Amazon Linux provides: its glibc, and libgcc_s. A static executable (no dynamic
section) needs nothing and loads everywhere. It also checks the machine (x86_64 or arm64) and the interpreter.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Os:
    name: str
    glibc: tuple[int, ...]
    libgcc: tuple[int, ...]  # newest GCC_x.y.z version node its libgcc_s.so.1 defines


AL2023 = Os("Amazon Linux 2023", (2, 34), (11, 0, 0))
AL2 = Os("Amazon Linux 2", (2, 26), (7, 0, 0))
AL1 = Os("Amazon Linux 2018.03", (2, 17), (4, 8, 0))

# Every Lambda runtime identifier and the Amazon Linux it runs on (the AWS Lambda runtimes table, including
# deprecated runtimes). An identifier missing here fails the check: add it with its operating system.
RUNTIMES: dict[str, Os] = {
    **dict.fromkeys(
        [
            "provided.al2023",
            "nodejs24.x",
            "nodejs22.x",
            "nodejs20.x",
            "python3.14",
            "python3.13",
            "python3.12",
            "java25",
            "java21",
            "dotnet10",
            "dotnet8",
            "ruby3.4",
            "ruby3.3",
        ],
        AL2023,
    ),
    **dict.fromkeys(
        [
            "provided.al2",
            "nodejs18.x",
            "nodejs16.x",
            "nodejs14.x",
            "nodejs12.x",
            "python3.11",
            "python3.10",
            "python3.9",
            "python3.8",
            "java17",
            "java11",
            "java8.al2",
            "dotnet7",
            "dotnet6",
            "dotnetcore3.1",
            "ruby3.2",
            "ruby2.7",
        ],
        AL2,
    ),
    **dict.fromkeys(
        [
            "provided",
            "go1.x",
            "java8",
            "python3.7",
            "python3.6",
            "python2.7",
            "nodejs10.x",
            "nodejs8.10",
            "ruby2.5",
            "dotnetcore2.1",
        ],
        AL1,
    ),
}

# Libraries of glibc itself (present wherever glibc is) and their version namespace; libgcc_s is in every
# Amazon Linux image too. Any other library is one a Lambda runtime may lack.
GLIBC_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}
LIBGCC = "libgcc_s.so.1"

MACHINES = {"x86_64": 62, "arm64": 183}  # ELF e_machine
INTERPRETERS = {"x86_64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}


class Failure(Exception):
    pass


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def show(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# --- Terraform -------------------------------------------------------------------------------------------


def layer_runtimes() -> list[str]:
    """The default of `compatible_runtimes` in terraform/extension-layer, the list the layer is published with."""
    path = ROOT / "terraform/extension-layer/variables.tf"
    text = path.read_text()
    block = re.search(r'variable\s+"compatible_runtimes"\s*\{(.*?)\n\}', text, re.S)
    default = block and re.search(r"^\s*default\s*=\s*\[(.*?)\]", block.group(1), re.S | re.M)
    if not default:
        raise Failure(f"{path.relative_to(ROOT)}: no literal `default = [...]` in variable \"compatible_runtimes\"")
    runtimes = re.findall(r'"([^"]+)"', default.group(1))
    if not runtimes:
        raise Failure(f"{path.relative_to(ROOT)}: compatible_runtimes lists no runtime")
    return runtimes


def forwarder_runtimes() -> list[str]:
    """The `runtime` of the forwarder's aws_lambda_function in terraform/forwarder."""
    path = ROOT / "terraform/forwarder/main.tf"
    found = re.findall(r'^\s*runtime\s*=\s*"([^"]+)"', path.read_text(), re.M)
    if len(set(found)) != 1:
        raise Failure(f"{path.relative_to(ROOT)}: expected one literal `runtime = \"...\"`, found {found}")
    return found[:1]


def os_of(runtime: str) -> Os:
    if runtime not in RUNTIMES:
        raise Failure(f"unknown Lambda runtime {runtime!r}: add it to RUNTIMES in scripts/check_loadable.py")
    return RUNTIMES[runtime]


# --- ELF -------------------------------------------------------------------------------------------------


@dataclass
class Needs:
    machine: int
    interpreter: str | None
    libraries: list[str] = field(default_factory=list)
    # library -> [(version, weak)], from the version references
    versions: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    # version -> undefined symbols bound to it
    symbols: dict[str, list[str]] = field(default_factory=dict)

    @property
    def static(self) -> bool:
        return not self.libraries and not self.versions and self.interpreter is None


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def elf_header(path: Path) -> tuple[int, str | None]:
    """e_machine and the PT_INTERP path of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    if data[4] != 2 or data[5] != 1:
        raise Failure(f"{path.name}: not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    interpreter = None
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            interpreter = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
    return machine, interpreter


def objdump(*args: str) -> str:
    result = subprocess.run(["objdump", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"objdump {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def read_needs(path: Path) -> Needs:
    machine, interpreter = elf_header(path)
    needs = Needs(machine, interpreter)
    library = None
    in_references = False
    for line in objdump("-p", str(path)).splitlines():
        if m := re.match(r"\s+NEEDED\s+(\S+)", line):
            needs.libraries.append(m.group(1))
        elif line.startswith("Version References:"):
            in_references = True
        elif in_references and (m := re.match(r"\s+required from (\S+):", line)):
            library = m.group(1)
            needs.versions.setdefault(library, [])
        elif in_references and library and (m := re.match(r"\s+0x[0-9a-f]+ 0x([0-9a-f]+) \d+ (\S+)", line)):
            needs.versions[library].append((m.group(2), bool(int(m.group(1), 16) & 0x2)))  # VER_FLG_WEAK
        elif in_references and line.strip() and not line.startswith(" "):
            in_references = False
    if needs.libraries or needs.versions:
        for line in objdump("-T", str(path)).splitlines():
            m = re.search(r"\*UND\*\s+[0-9a-f]+\s+\(?([A-Za-z_]+[0-9][0-9A-Za-z_.]*)\)?\s+(\S+)$", line)
            if m:
                needs.symbols.setdefault(m.group(1), []).append(m.group(2))
    return needs


def problems(needs: Needs, arch: str, runtime_os: Os) -> list[str]:
    """Why a runtime on `runtime_os` could not load the executable; empty when it can."""
    found = []
    if needs.machine != MACHINES[arch]:
        found.append(f"ELF machine {needs.machine}, not {arch} ({MACHINES[arch]})")
    if needs.interpreter is not None and needs.interpreter != INTERPRETERS[arch]:
        found.append(f"interpreter {needs.interpreter}, not {INTERPRETERS[arch]}")
    for library in needs.libraries:
        if library not in GLIBC_LIBRARIES and library != LIBGCC:
            found.append(f"needs {library}, which is not part of glibc or libgcc_s")
    for library, versions in needs.versions.items():
        for version, weak in versions:
            if weak:
                continue  # the loader only warns about a missing weak version
            symbols = ", ".join(sorted(set(needs.symbols.get(version, [])))) or "no symbol named"
            if library in GLIBC_LIBRARIES and (m := re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", version)):
                if version_tuple(m.group(1)) > runtime_os.glibc:
                    found.append(f"needs {version} from {library} ({symbols}), glibc is {show(runtime_os.glibc)}")
            elif library == LIBGCC and (m := re.fullmatch(r"GCC_(\d+(?:\.\d+)+)", version)):
                if version_tuple(m.group(1)) > runtime_os.libgcc:
                    found.append(f"needs {version} from {library} ({symbols}), libgcc_s has {show(runtime_os.libgcc)}")
            else:
                found.append(f"needs {version} from {library} ({symbols}), which no Amazon Linux release promises")
    return found


def newest_glibc(needs: Needs) -> str:
    versions = [
        version_tuple(m.group(1))
        for refs in needs.versions.values()
        for version, _ in refs
        if (m := re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", version))
    ]
    return f"glibc {show(max(versions))}" if versions else "no glibc version"


def executables(package: Path, scratch: Path) -> list[tuple[str, Path]]:
    """(name in the package, path on disk) of every ELF file in a zip, or the file itself."""
    if not zipfile.is_zipfile(package):
        if not is_elf(package.read_bytes()[:4]):
            raise Failure(f"{package}: neither a zip nor an ELF file")
        return [(package.name, package)]
    found = []
    with zipfile.ZipFile(package) as z:
        for info in z.infolist():
            if info.is_dir() or not is_elf(z.read(info)[:4]):
                continue
            found.append((info.filename, Path(z.extract(info, scratch))))
    if not found:
        raise Failure(f"{package}: holds no executable")
    return found


def check(arch: str, package: Path, runtimes: list[str]) -> bool:
    if shutil.which("objdump") is None:
        raise Failure("objdump not found: install binutils (Debian/Ubuntu: apt-get install binutils)")
    oses = {runtime: os_of(runtime) for runtime in runtimes}  # unknown runtimes fail before any work
    by_os: dict[Os, list[str]] = {}
    for runtime, runtime_os in oses.items():
        by_os.setdefault(runtime_os, []).append(runtime)
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        for name, path in executables(package, Path(scratch)):
            needs = read_needs(path)
            what = (
                "static, needs no library"
                if needs.static
                else f"needs {newest_glibc(needs)} at most, libraries {', '.join(needs.libraries) or 'none'}"
            )
            print(f"{package.name}: {name}: {what}")
            for runtime_os, listed in by_os.items():
                label = f"{', '.join(listed)} ({runtime_os.name}, glibc {show(runtime_os.glibc)})"
                found = problems(needs, arch, runtime_os)
                for problem in found:
                    print(f"  FAIL {label}: cannot load {name}: {problem}")
                if not found:
                    print(f"  ok   {label}")
                ok = ok and not found
    return ok


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 2 and argv[0] == "runtimes" and argv[1] in ("layer", "forwarder"):
            print("\n".join(layer_runtimes() if argv[1] == "layer" else forwarder_runtimes()))
            return 0
        if len(argv) >= 2 and argv[0] == "glibc":
            print(show(min(os_of(runtime).glibc for runtime in argv[1:])))
            return 0
        if len(argv) >= 5 and argv[0] == "check" and argv[1] == "--arch" and argv[2] in MACHINES:
            return 0 if check(argv[2], Path(argv[3]), argv[4:]) else 1
    except Failure as failure:
        print(f"check_loadable: {failure}", file=sys.stderr)
        return 1
    print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
