"""The checks at the end of a chaos run; each adds what it finds to report.problems."""

from __future__ import annotations

import signal
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from gpu_worker.storage import R2
from scripts.gpu_worker_proc import r2_config

from .faults import Injection
from .fleet import Fleet
from .frames import compare_frames, decode_planes
from .proxy import FaultProxy
from .report import Report
from .users import Submission
from .watch import TERMINAL, JobWatch, claim_end

COMPARED = ("status", "progress", "frame", "total_frames", "attempts", "resume_count", "interruptions", "seq",
            "error", "output_ready", "gpu_seconds", "checkpoint")


@dataclass
class Evidence:
    """What the checks read: the jobs as submitted, as the DO and D1 say, as the workers logged them."""

    subs: list[Submission]
    watches: dict[str, JobWatch]
    fleet: Fleet
    proxy: FaultProxy
    snapshots: dict[str, dict]  # job id -> the DO's view at the end
    lines: dict[str, list[tuple[str, dict]]]  # job id -> (worker, log line)


def verify(report: Report, stack, subs: list[Submission], watches: dict[str, JobWatch], fleet: Fleet,
           proxy: FaultProxy, workdir: Path, log) -> None:
    report.proxy_faults = proxy.faults
    report.replays = sum(s.replayed for s in subs)
    evidence = Evidence(subs, watches, fleet, proxy, {s.job_id: s.user.api.get(s.job_id).model_dump(mode="json")
                                                      for s in subs}, _lines_per_job(report, fleet))
    check_listing(report, evidence)
    check_restart(report)
    r2 = R2(r2_config(stack))
    outputs = check_storage(report, evidence, r2)
    log("comparing outputs with the uninterrupted references")
    check_outputs(report, evidence, r2, outputs, workdir / "outputs")
    check_completes(report, evidence)
    check_resumes(report, evidence)
    check_untouched(report, evidence)


def _lines_per_job(report: Report, fleet: Fleet) -> dict[str, list[tuple[str, dict]]]:
    """Workers: none crashed; what each logged per job."""
    for name, code in fleet.exits.items():
        if code not in (0, -signal.SIGKILL):
            report.problems.append(f"worker {name} exited with {code}")
    per_job: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for name, lines in fleet.log_lines().items():
        for line in lines:
            if line.get("job_id"):
                per_job[line["job_id"]].append((name, line))
            if line.get("msg") == "worker slot crashed" or line.get("level") == "error" and "exc" in line:
                report.problems.append(f"worker {name}: {line.get('msg')}: {str(line.get('exc', ''))[-300:]}")
    return per_job


def check_listing(report: Report, ev: Evidence) -> None:
    """D1 lists exactly the submitted jobs, one per Idempotency-Key, each as its DO says; all terminal."""
    listed: dict[str, dict] = {}
    users = {id(s.user): s.user for s in ev.subs}
    for user in users.values():
        rows = [job.model_dump(mode="json") for job in user.api.jobs()]
        ids = [r["job_id"] for r in rows]
        report.duplicates += len(ids) - len(set(ids))
        mine = {s.job_id for s in ev.subs if s.user is user}
        if set(ids) != mine:
            report.problems.append(f"user's job list differs from the submitted jobs: extra {sorted(set(ids) - mine)}, "
                                   f"missing {sorted(mine - set(ids))}")
            report.duplicates += len(set(ids) - mine)
            report.lost += len(mine - set(ids))
        listed.update({r["job_id"]: r for r in rows})
    report.statuses = Counter(j["status"] for j in ev.snapshots.values())
    report.lost += sum(j["status"] not in TERMINAL for j in ev.snapshots.values())
    report.final = {j: v["status"] for j, v in ev.snapshots.items()}
    for s in ev.subs:
        job = ev.snapshots[s.job_id]
        if ev.watches[s.job_id].error:
            report.problems.append(f"job {s.job_id}: watch ended: {ev.watches[s.job_id].error}")
        report.resumes += job["resume_count"]
        report.attempts += job["attempts"]
        report.interruptions += job["interruptions"]
        if job["status"] != "complete":
            report.problems.append(f"job {s.job_id} ({s.kind}) ended {job['status']}: {job['error']}")
        d1 = listed.get(s.job_id)
        differ = [f"{f}: D1 {d1.get(f)!r} DO {job.get(f)!r}" for f in COMPARED if d1 and d1.get(f) != job.get(f)]
        if d1 is None or differ:
            report.problems.append(f"job {s.job_id}: D1 and DO disagree: {differ or 'not listed'}")
        else:
            report.agree += 1


def check_restart(report: Report) -> None:
    for inj in report.injections:
        if inj.kind == "restart" and not inj.effective:
            report.problems.append(f"wrangler dev did not come back on its port: {inj.note}")


def check_storage(report: Report, ev: Evidence, r2: R2) -> dict[str, list[str]]:
    """R2 holds one output for each complete job (each lease has its own key; what no lease committed is
    gone) and no checkpoint; the outputs of each job."""
    keys = list(r2.keys(""))
    outputs: dict[str, list[str]] = {}
    for k in keys:
        if k.startswith("videos/output/"):
            outputs.setdefault(k.split("/")[2], []).append(k)
    complete = {s.job_id for s in ev.subs if ev.snapshots[s.job_id]["status"] == "complete"}
    if set(outputs) != complete or any(len(found) != 1 for found in outputs.values()):
        report.problems.append(f"outputs in R2 differ from the complete jobs: extra {sorted(set(outputs) - complete)}, "
                               f"missing {sorted(complete - set(outputs))}, "
                               f"more than one {sorted(j for j, found in outputs.items() if len(found) > 1)}")
    orphans = [k for k in keys if k.startswith("checkpoints/")]
    report.orphans = len(orphans)
    if orphans:
        report.problems.append(f"{len(orphans)} checkpoint object(s) left in R2: {orphans[:10]}")
    strays = [k for k in keys if not k.startswith(("videos/output/", "videos/raw/", "checkpoints/"))]
    if strays:
        report.problems.append(f"unexpected objects in R2: {strays[:10]}")
    return outputs


def check_outputs(report: Report, ev: Evidence, r2: R2, outputs: dict[str, list[str]], folder: Path) -> None:
    """Each output against its uninterrupted reference: every frame identical before the segment of
    the first off-boundary resume (segments are cut exactly as in the reference), PSNR from there on."""
    folder.mkdir(parents=True, exist_ok=True)
    segment = report.config.checkpoint_frames
    for s in ev.subs:
        if ev.snapshots[s.job_id]["status"] != "complete" or len(outputs.get(s.job_id, ())) != 1:
            continue
        path = folder / f"{s.job_id}.mp4"
        r2.download(outputs[s.job_id][0], str(path))
        try:
            out, out_audio = decode_planes(str(path))
        except Exception as e:
            report.problems.append(f"job {s.job_id}: output is not a valid video: {e}")
            continue
        ref_frames, ref_audio = decode_planes(s.ref["path"])
        if len(out) != s.expected_frames or len(out) != len(ref_frames):
            report.problems.append(f"job {s.job_id}: {len(out)} frames, expected {s.expected_frames}")
            continue
        if out_audio != ref_audio:
            report.problems.append(f"job {s.job_id}: audio stream {'present' if out_audio else 'missing'} unlike the "
                                   f"reference")
        off_boundary = [line["from_frame"] for _, line in ev.lines[s.job_id]
                        if line.get("msg") == "resuming" and line["from_frame"] % segment]
        exact_until = min(off_boundary) // segment * segment if off_boundary else len(out)
        frame_problems, stats = compare_frames(out, ref_frames, exact_until)
        report.problems += [f"job {s.job_id} ({s.kind}): {p}" for p in frame_problems]
        if stats["identical"] == len(out):
            report.md5_identical += 1
        else:
            report.psnr_checked += 1
            report.psnr_min = min(report.psnr_min, stats["psnr_min"])
        path.unlink()


def check_completes(report: Report, ev: Evidence) -> None:
    """Exactly one accepted complete per job: the workers' logs, plus completes the proxy saw accepted
    whose answer never reached the pod; the DO broadcast at most one complete."""
    records = ev.proxy.records
    lease_pod = {r["lease_id"]: r["pod_id"] for r in records if r["action"] == "claim" and r.get("lease_id")}
    for s in ev.subs:
        lines = ev.lines[s.job_id]
        pods = {name for name, line in lines if line.get("msg") == "complete"}
        pods |= {lease_pod.get(r.get("lease_id"), "?") for r in records
                 if r["job_id"] == s.job_id and r["action"] == "complete" and r["status"] == 200 and not r.get("ignored")}
        unsure = [name for name, line in lines if line.get("msg", "").startswith("complete report failed")]
        expected = 1 if ev.snapshots[s.job_id]["status"] == "complete" else 0
        completes = ev.watches[s.job_id].completes()
        if len(pods) > 1 or completes > 1:
            report.duplicate_completes += 1
            report.problems.append(f"job {s.job_id}: completed by {sorted(pods)}; DO complete events: {completes}")
        elif len(pods) != expected and not (unsure and expected == 1):
            report.problems.append(f"job {s.job_id}: {len(pods)} accepted complete report(s), expected {expected}")


def check_resumes(report: Report, ev: Evidence) -> None:
    """Resume counts against the interruptions caused. An injection is effective when the job was
    claimed again after it: a started/resumed event after the confirmed seq in the DO's stream, or,
    where the stream has a gap (the restart), a `claimed` line another worker logged after the signal."""
    effective: dict[str, list[Injection]] = defaultdict(list)
    for inj in report.injections:
        if inj.job_id is None or inj.kind == "lose":
            continue
        if _effective(report, ev, inj):
            effective[inj.job_id].append(inj)
    for job_id, injs in effective.items():
        job = ev.snapshots[job_id]
        kills = sum(i.kind == "kill" and i.ended_by == "requeued" for i in injs)
        stops = sum(i.kind in ("term", "spot") and (i.end or {}).get("cause") == "interrupted" for i in injs)
        if job["resume_count"] < len(injs):
            report.problems.append(f"job {job_id}: resume_count {job['resume_count']} < {len(injs)} effective "
                                   f"interruptions")
        if job["attempts"] < kills:
            report.problems.append(f"job {job_id}: attempts {job['attempts']} < {kills} killed claims")
        if job["interruptions"] < stops:
            report.problems.append(f"job {job_id}: interruptions {job['interruptions']} < {stops} spot-stopped claims")


def _effective(report: Report, ev: Evidence, inj: Injection) -> bool:
    job = ev.snapshots[inj.job_id]
    events = ev.watches[inj.job_id].by_seq()
    inj.end = end = claim_end(events, inj.confirm_seq)
    later_events = [e for seq, e in sorted(events.items()) if seq > inj.confirm_seq and e["type"] in ("started", "resumed")]
    later_lines = [line for name, line in ev.lines[inj.job_id] if line.get("msg") == "claimed"
                   and name != inj.worker and line["ts"] > inj.at]
    inj.effective = bool(later_events or later_lines)
    if not inj.effective:
        inj.note = ("the job finished in the interrupted claim" if inj.ended_by == "complete"
                    else f"no later claim seen (claim ended by {inj.ended_by})")
        return False
    problems = report.problems
    for e in later_events:  # the claim after a checkpoint is a resume, and the DO counts it
        if e["type"] != "resumed" or e["job"]["resume_count"] < inj.resume_count + 1:
            problems.append(f"job {inj.job_id}: claim after a {inj.kind} of a checkpointed claim (resume_count "
                            f"{inj.resume_count}) announced as {e}")
    for line in later_lines:
        if line["resume_count"] < inj.resume_count + 1:
            problems.append(f"job {inj.job_id}: claim after a {inj.kind} of a checkpointed claim (resume_count "
                            f"{inj.resume_count}) granted with resume_count {line['resume_count']}")
    if job["resume_count"] < inj.resume_count + 1:
        problems.append(f"job {inj.job_id}: resume_count {job['resume_count']} after a {inj.kind} of the claim that "
                        f"had stored a checkpoint at resume_count {inj.resume_count}")
    if inj.kind == "kill" and end and end["type"] == "requeued" and end.get("cause") != "lease_expired":
        problems.append(f"job {inj.job_id}: the killed pod's claim ended by {end}, not by its lease expiring")
    return True


def check_untouched(report: Report, ev: Evidence) -> None:
    """A job no fault touched was never re-queued or resumed."""
    lease_s = report.config.lease_timeout_s
    restarts = [(i.at, i.until) for i in report.injections if i.kind == "restart"]
    faulted = {r["job_id"] for r in ev.proxy.records if r["fault"] or (r["status"] or 0) >= 500}
    for s in ev.subs:
        job = ev.snapshots[s.job_id]
        lines = ev.lines[s.job_id]
        span = [line["ts"] for _, line in lines]
        touched = (s.job_id in faulted or any(i.job_id == s.job_id for i in report.injections)
                   or any(line.get("level") in ("warning", "error") for _, line in lines)
                   or any(name in ev.fleet.signalled for name, _ in lines)
                   or (span and any(a - lease_s <= max(span) and min(span) <= b + lease_s for a, b in restarts)))
        if not touched and (job["resume_count"], job["attempts"], job["interruptions"]) != (0, 0, 0):
            report.problems.append(f"job {s.job_id}: no fault touched it, yet resume_count {job['resume_count']}, "
                                   f"attempts {job['attempts']}, interruptions {job['interruptions']}")
