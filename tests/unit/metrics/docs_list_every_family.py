"""Every metric family the node and the agent write is listed in the docs:
the node's in docs/operator.md, the agent's in docs/lan-agent.md (each as
`name` in a table row). Usage: docs_list_every_family.py METRICS_SAMPLE ROOT"""
import os
import re
import subprocess
import sys


def main():
    sample, root = sys.argv[1], sys.argv[2]
    missing = []
    for which, doc in (("node", "operator.md"), ("agent", "lan-agent.md")):
        text = subprocess.run([sample, which], check=True, capture_output=True, text=True).stdout
        families = re.findall(r"^# TYPE (\S+) ", text, re.M)
        with open(os.path.join(root, "docs", doc)) as f:
            listed = set(re.findall(r"^\| `([a-z_:]+)` \|", f.read(), re.M))
        absent = ["docs/%s lacks %s" % (doc, name) for name in families if name not in listed]
        if not absent:
            print("%s: %d families, each listed in docs/%s" % (which, len(families), doc))
        missing += absent
    for line in missing:
        print(line)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
