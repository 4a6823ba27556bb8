"""gpu-export: the export API from a shell.

    gpu-export submit clip.mp4 --overlay spotlight.json --wait --download out.mp4

On a terminal it shows progress bars; otherwise (a pipe, CI) it prints one JSON object per line.
Exit status: 0 done (the job completed), 1 the job failed or was cancelled, 2 bad usage or input,
3 the API refused a request, 4 the API could not be reached, 5 `--timeout` ran out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from jobspec import error_summary

from . import cost
from .errors import ApiError, TimedOut, Unavailable
from .output import Output
from .sync import Client

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
URL_ENV, TOKEN_ENV = "GPU_EXPORT_URL", "GPU_EXPORT_TOKEN"


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------- commands


def cmd_signup(api: Client, args, out: Output) -> int:
    user = api.sign_up_anonymous()
    out.result("signed_up", user_id=user.user_id, token=user.token,
               hint=f"export {TOKEN_ENV}={user.token}")
    return EXIT_OK


def cmd_upload(api: Client, args, out: Output) -> int:
    for path in args.files:
        out.result("uploaded", file=str(path), video_key=_upload(api, path, out))
    return EXIT_OK


def cmd_submit(api: Client, args, out: Output) -> int:
    job = build_job(args)
    keys = [_upload(api, path, out) for path in args.files]
    created = api.create(with_inputs(job, keys), idempotency_key=args.idempotency_key)
    out.result("created", job_id=created.job_id, status=created.status,
               estimated_wait_seconds=created.estimated_wait_seconds)
    return _follow(api, created.job_id, args, out)


def cmd_wait(api: Client, args, out: Output) -> int:
    return _follow(api, args.job_id, args, out)


def cmd_status(api: Client, args, out: Output) -> int:
    out.job(api.get(args.job_id))
    return EXIT_OK


def cmd_list(api: Client, args, out: Output) -> int:
    statuses = args.status.split(",") if args.status else None
    for n, job in enumerate(api.jobs(statuses)):
        if n >= args.limit:
            break
        out.job(job)
    return EXIT_OK


def cmd_cancel(api: Client, args, out: Output) -> int:
    out.job(api.cancel(args.job_id))
    return EXIT_OK


def cmd_retry(api: Client, args, out: Output) -> int:
    out.job(api.retry(args.job_id))
    return _follow(api, args.job_id, args, out)


def cmd_download(api: Client, args, out: Output) -> int:
    _download(api, args.job_id, args.output, out)
    return EXIT_OK


def cmd_health(api: Client, args, out: Output) -> int:
    out.result("health", **api.health().model_dump())
    return EXIT_OK


def cmd_cost(api: Client, args, out: Output) -> int:
    try:
        prices = cost.load_prices(args.prices)
        price = args.price_per_hour if args.price_per_hour is not None else cost.price_for(args.instance, prices)
        report = cost.summarize(api.health(), price, args.instance)
    except cost.CostError as e:
        raise UsageError(str(e)) from None
    if out.json:
        out.result("cost", **asdict(report))
    else:
        print(cost.render(report))
    return EXIT_OK


# ---------------------------------------------------------------------- jobs from files


def build_job(args) -> dict:
    """The job to submit: --job (a whole job, JSON), or --overlay / --framing (their params, JSON)."""
    if args.job:
        return _read_json(args.job)
    if args.overlay or args.framing:
        if len(args.files) != 1:
            raise UsageError("--overlay and --framing take exactly one video file")
        kind, path = ("overlay", args.overlay) if args.overlay else ("framing", args.framing)
        return {"type": kind, "input_video_key": "@1", "params": _read_json(path)}
    raise UsageError("say what to render: --overlay PARAMS.json, --framing PARAMS.json or --job JOB.json")


def with_inputs(job: dict, keys: list[str]) -> dict:
    """The job with each input "@N" replaced by the key of the N-th uploaded file."""
    def replace(value):
        if isinstance(value, dict):
            return {k: (_key_for(v, keys) if k == "input_video_key" else replace(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [replace(v) for v in value]
        return value
    return replace(job)


def _key_for(ref, keys: list[str]):
    if isinstance(ref, str) and ref.startswith("@") and ref[1:].isdigit():
        n = int(ref[1:])
        if not 1 <= n <= len(keys):
            raise UsageError(f"the job names {ref}, but {len(keys)} video file(s) were given")
        return keys[n - 1]
    return ref


def _read_json(path: str):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None


# ---------------------------------------------------------------------- following a job


def _upload(api: Client, path: Path, out: Output) -> str:
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    return api.upload(path, progress=out.bar(f"upload {path.name}"))


def _follow(api: Client, job_id: str, args, out: Output) -> int:
    """With --wait or --download: follow the job until it finishes, then download it (--download)."""
    if not (args.wait or args.download):
        return EXIT_OK
    job = api.wait(job_id, on_event=out.event, timeout_s=args.timeout)
    out.done(job)
    if job.status != "complete":
        return EXIT_JOB_FAILED
    if args.download:
        _download(api, job_id, args.download, out)
    return EXIT_OK


def _download(api: Client, job_id: str, dest, out: Output) -> None:
    path = api.download(job_id, dest, progress=out.bar("download"))
    out.result("downloaded", job_id=job_id, path=str(path), size_bytes=path.stat().st_size)


# ---------------------------------------------------------------------- the parser


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu-export", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get(URL_ENV), help=f"the API's base URL [{URL_ENV}]")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"your API token [{TOKEN_ENV}]")
    p.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    p.add_argument("--retry-for", type=float, default=30.0, metavar="S",
                   help="retry calls this long while the API is unreachable (default 30)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help_text):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.set_defaults(func=func)
        return c

    def follow_options(c):
        c.add_argument("--wait", action="store_true", help="follow the job until it finishes")
        c.add_argument("--download", metavar="OUT", help="then download the export to OUT (implies --wait)")
        c.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds (exit 5)")

    command("signup", cmd_signup, "create an anonymous account (local and demo deployments) and print its token")
    c = command("upload", cmd_upload, "upload video files; print their keys")
    c.add_argument("files", nargs="+", type=Path, metavar="FILE")
    c = command("submit", cmd_submit, "upload video files and submit an export job for them")
    c.add_argument("files", nargs="+", type=Path, metavar="FILE")
    what = c.add_mutually_exclusive_group()
    what.add_argument("--overlay", metavar="PARAMS.json", help="a spotlight overlay with these params")
    what.add_argument("--framing", metavar="PARAMS.json", help="a portrait framing with these params")
    what.add_argument("--job", metavar="JOB.json", help='a whole job; "input_video_key": "@N" is the N-th FILE')
    c.add_argument("--idempotency-key", metavar="KEY", help="submitting again with this key gives the same job")
    follow_options(c)
    c = command("wait", cmd_wait, "follow a job until it finishes")
    c.add_argument("job_id")
    follow_options(c)
    c.set_defaults(wait=True)  # without --wait too
    c = command("status", cmd_status, "show a job")
    c.add_argument("job_id")
    c = command("list", cmd_list, "list your jobs, newest first")
    c.add_argument("--status", help="only these statuses, comma-separated (e.g. pending,processing)")
    c.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    c = command("cancel", cmd_cancel, "cancel a job")
    c.add_argument("job_id")
    c = command("retry", cmd_retry, "retry a failed job")
    c.add_argument("job_id")
    follow_options(c)
    c = command("download", cmd_download, "download a finished export")
    c.add_argument("job_id")
    c.add_argument("output", type=Path, metavar="OUT")
    command("health", cmd_health, "the service's health: queue backlog, jobs by status, live GPU pods")
    c = command("cost", cmd_cost, "the GPU cost report: GPU time, cost per completed job, against the design")
    c.add_argument("--instance", default=cost.DEFAULT_INSTANCE,
                   help=f"instance type to price the GPU time at (default {cost.DEFAULT_INSTANCE})")
    c.add_argument("--price-per-hour", type=float, help="USD per GPU-hour; overrides the table")
    c.add_argument("--prices", help=f"JSON price table (file or inline), merged over the defaults [{cost.PRICES_ENV}]")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.url:
        p.error(f"missing --url ({URL_ENV})")
    out = Output(json_lines=args.json or not sys.stdout.isatty())
    try:
        with Client(args.url, args.token, retry_for_s=args.retry_for) as api:
            return args.func(api, args, out)
    except UsageError as e:
        return out.fail(EXIT_USAGE, "usage", str(e))
    except ValidationError as e:
        return out.fail(EXIT_USAGE, "invalid_job", error_summary(e))
    except ApiError as e:
        return out.fail(EXIT_REFUSED, e.error, e.reason, status=e.status)
    except Unavailable as e:
        return out.fail(EXIT_UNAVAILABLE, "unavailable", str(e))
    except TimedOut as e:
        out.job(e.job)
        return out.fail(EXIT_TIMEOUT, "timed_out", str(e))
    except KeyboardInterrupt:
        return 130
    finally:
        out.close()


if __name__ == "__main__":
    sys.exit(main())
