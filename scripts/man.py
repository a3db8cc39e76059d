#!/usr/bin/env python3
"""Keep docs/cow.1's SYNOPSIS and COMMANDS sections equal to the command table.

usage: man.py COW MANPAGE          rewrite MANPAGE's generated parts from `COW help --man`
       man.py --check COW MANPAGE  exit 1, with a diff, if MANPAGE is not current

Each generated part sits between `.\\" BEGIN NAME` and `.\\" END NAME` lines; the
rest of the page is written by hand.
"""
import difflib
import re
import subprocess
import sys


def parts(text):
    return {m.group(1): m.group(0) for m in re.finditer(
        r'^\.\\" BEGIN (\w+)\b.*?^\.\\" END \1\n', text, re.S | re.M)}


def main(argv):
    check = argv[1:2] == ["--check"]
    if check:
        argv = argv[1:]
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cow, page = argv[1], argv[2]
    gen = parts(subprocess.run([cow, "help", "--man"], check=True, capture_output=True,
                               text=True).stdout)
    old = open(page, encoding="utf-8").read()
    have = parts(old)
    if not gen or set(gen) != set(have):
        print(f"man.py: {page} has parts {sorted(have)}, cow makes {sorted(gen)}",
              file=sys.stderr)
        return 1
    new = old
    for name, block in gen.items():
        new = new.replace(have[name], block)
    if new == old:
        return 0
    if check:
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                   page, "cow help --man"))
        print(f"{page} is out of date: run `make man`", file=sys.stderr)
        return 1
    open(page, "w", encoding="utf-8").write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
