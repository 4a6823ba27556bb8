#!/usr/bin/env python3
"""A stand-in for wrangler with an account kept in a JSON file ($FAKE_WRANGLER_STATE), for testing
scripts/deploy.sh without Cloudflare. Answers the commands deploy.sh uses the way wrangler 4.164.0
prints them; every call is appended to the state's "calls"."""

import json
import os
import sys
import uuid
from pathlib import Path

state_path = Path(os.environ["FAKE_WRANGLER_STATE"])
state = json.loads(state_path.read_text()) if state_path.exists() else {}
for key, empty in (("calls", []), ("d1", {}), ("buckets", {}), ("queues", {}), ("secrets", {}),
                   ("migrations", 0), ("deploys", [])):
    state.setdefault(key, empty)
args = sys.argv[1:]
state["calls"].append(args)


def save_and_exit(code=0, out=""):
    state_path.write_text(json.dumps(state, indent=1))
    if out:
        print(out)
    sys.exit(code)


def fail(msg):
    print(f"✘ [ERROR] {msg}", file=sys.stderr)
    save_and_exit(1)


match args:
    case ["d1", "list", "--json"]:
        save_and_exit(0, json.dumps([{"uuid": u, "name": n} for n, u in state["d1"].items()]))
    case ["d1", "create", name]:
        if name in state["d1"]:
            fail(f"A database with that name already exists: {name}")
        state["d1"][name] = str(uuid.uuid4())
        save_and_exit(0, f"✅ Successfully created DB '{name}'")
    case ["r2", "bucket", "info", name]:
        if name not in state["buckets"]:
            fail("The specified bucket does not exist. [code: 10006]")
        save_and_exit(0, f"name: {name}")
    case ["r2", "bucket", "create", name]:
        if name in state["buckets"]:
            fail("The bucket you tried to create already exists, and you own it. [code: 10004]")
        state["buckets"][name] = {"cors": None}
        save_and_exit()
    case ["r2", "bucket", "cors", "set", name, "--file", path, "--force"]:
        if name not in state["buckets"]:
            fail("The specified bucket does not exist.")
        rules = json.loads(Path(path).read_text())
        if "rules" not in rules:
            fail("The CORS configuration file must contain a 'rules' array")
        state["buckets"][name]["cors"] = rules
        save_and_exit()
    case ["r2", "bucket", "lifecycle", "set", name, "--file", path, "--force"]:
        if name not in state["buckets"]:
            fail("The specified bucket does not exist.")
        rules = json.loads(Path(path).read_text())
        if "rules" not in rules:
            fail("The lifecycle configuration file must contain a 'rules' array.")
        state["buckets"][name]["lifecycle"] = rules
        save_and_exit()
    case ["queues", "info", name]:
        q = state["queues"].get(name)
        if q is None:
            fail(f"Queue \"{name}\" does not exist.")
        lines = [f"Queue Name: {name}", f"Queue ID: {q['id']}", f"Number of Consumers: {len(q['consumers'])}"]
        if q["consumers"]:
            lines.append("Consumers: HTTP Pull Consumer.\nPull messages using: ...")
        save_and_exit(0, "\n".join(lines))
    case ["queues", "create", name]:
        if name in state["queues"]:
            fail("A queue with this name already exists")
        state["queues"][name] = {"id": uuid.uuid4().hex, "consumers": []}
        save_and_exit()
    case ["queues", "consumer", "http", "add", name, *flags]:
        q = state["queues"][name]
        if q["consumers"]:
            fail("Queue already has a consumer")
        opts = dict(zip(flags[::2], flags[1::2]))
        if opts.get("--dead-letter-queue") not in state["queues"]:
            fail("dead letter queue does not exist")
        q["consumers"].append({"type": "http_pull", **opts})
        save_and_exit()
    case ["d1", "migrations", "apply", name, "--remote"]:
        if name not in state["d1"]:
            fail(f"Couldn't find a D1 DB with the name or binding '{name}'")
        state["migrations"] += 1
        save_and_exit()
    case ["secret", "list", "--format", "json"]:
        save_and_exit(0, json.dumps([{"name": n, "type": "secret_text"} for n in state["secrets"]], indent=2))
    case ["secret", "put", name]:
        value = sys.stdin.read()
        if not value:
            fail("empty secret")
        state["secrets"][name] = value
        save_and_exit(0, f"✨ Success! Uploaded secret {name}")
    case ["deploy", *flags]:
        state["deploys"].append(flags)
        save_and_exit(0, "Uploaded gpu-export-api\nDeployed gpu-export-api triggers\n"
                         "  https://gpu-export-api.example-team.workers.dev\nCurrent Version ID: 1")
    case _:
        fail(f"fake wrangler: unexpected command {args}")
