#!/usr/bin/env bash
# Runs Debian's flake8 (the Python the server tests use) over the repository's Python (.flake8),
# then audits the suppressions: every `# noqa: CODE` must silence a CODE that flake8 reports on
# that very line, and a bare `# noqa` (which silences everything) is refused. So each suppression
# means something, and one left behind by a fix fails the lint.
set -euo pipefail
py="${MODEL_SERVER_PYTHON:-/usr/bin/python3}"
if ! "$py" -m flake8 --version >/dev/null 2>&1; then
  echo "flake8 is missing for $py: apt-get install -y python3-flake8 (.ci/run installs it)" >&2
  exit 1
fi
"$py" -m flake8 "$@"
"$py" -m flake8 --disable-noqa --exit-zero --format='%(path)s:%(row)d:%(code)s' "$@" | "$py" -c '
import re, subprocess, sys
reported = set(line.strip() for line in sys.stdin)
files = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True, check=True).stdout.split()
bad = []
for path in files:
    for row, text in enumerate(open(path, encoding="utf-8"), 1):
        match = re.search(r"#\s*noqa\b(:?\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", text, re.I)
        if not match:
            continue
        if not match.group(2):
            bad.append(f"{path}:{row}: a bare noqa silences every check: name the code")
            continue
        for code in re.split(r"\s*,\s*", match.group(2)):
            if f"./{path}:{row}:{code}" not in reported and f"{path}:{row}:{code}" not in reported:
                bad.append(f"{path}:{row}: noqa: {code} suppresses nothing flake8 reports there: remove it")
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
'
