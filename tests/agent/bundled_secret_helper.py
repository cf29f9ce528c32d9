"""Stand-in for the agent image's /readsecret_multiple_providers.sh, which only the agent image has: the same
contract (a JSON request on stdin, {"version": "1.0", "secrets": [handles]}; {handle: {"value", "error"}} on
stdout) and its file provider, `file@/absolute/path` (the file's content as it is). `k8s_secret@` needs a
Kubernetes API and is answered with an error here, as is any other handle."""

import json
import sys

request = json.load(sys.stdin)
answers = {}
for handle in request["secrets"]:
    provider, _, path = handle.partition("@")
    if provider != "file":
        answers[handle] = {"value": None, "error": f"provider {provider!r} is not available in this stand-in"}
        continue
    try:
        with open(path) as f:
            answers[handle] = {"value": f.read(), "error": None}
    except OSError as e:
        answers[handle] = {"value": None, "error": f"could not read {path}: {e.strerror}"}
json.dump(answers, sys.stdout)
