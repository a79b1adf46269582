"""House rules of terraform/ that neither terraform nor checkov enforce.

- every module has variables.tf, outputs.tf, versions.tf and README.md (examples: versions.tf and README.md);
- every variable and output has a description, every variable a type;
- every README of a module mentions each of its variables (the reference a user reads);
- every checkov skip carries a justification next to it: `checkov:skip=<ID>:<reason>`.
"""

import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "terraform")
problems = []

BLOCK = re.compile(r'^(variable|output)\s+"([^"]+)"\s*\{(.*?)^\}', re.S | re.M)
SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def module_dirs():
    for versions in sorted(root.rglob("versions.tf")):
        if ".terraform" not in versions.parts:
            yield versions.parent


for module in module_dirs():
    is_example = "examples" in module.relative_to(root).parts
    required = ["versions.tf", "README.md"] if is_example else ["variables.tf", "outputs.tf", "versions.tf", "README.md"]
    for name in required:
        if not (module / name).is_file():
            problems.append(f"{module}: missing {name}")
    readme = (module / "README.md").read_text() if (module / "README.md").is_file() else ""
    for tf in sorted(module.glob("*.tf")):
        text = tf.read_text()
        for kind, name, body in BLOCK.findall(text):
            if not re.search(r"^\s*description\s*=", body, re.M):
                problems.append(f"{tf}: {kind} {name} has no description")
            if kind == "variable" and not re.search(r"^\s*type\s*=", body, re.M):
                problems.append(f"{tf}: variable {name} has no type")
            if kind == "variable" and not is_example and f"`{name}`" not in readme:
                problems.append(f"{module}/README.md: variable `{name}` is not documented")

for tf in sorted(root.rglob("*.tf")):
    for number, line in enumerate(tf.read_text().splitlines(), 1):
        for check, reason in SKIP.findall(line):
            if len(reason.strip()) < 20:
                problems.append(f"{tf}:{number}: checkov skip of {check} without a justification")

for problem in problems:
    print(problem)
print(f"terraform lint: {len(problems)} problem(s) in {sum(1 for _ in module_dirs())} modules")
sys.exit(1 if problems else 0)
