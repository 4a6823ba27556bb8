"""The `gpu-export` command line as a user runs it: JSON lines when not on a terminal, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av

from .conftest import OVERLAY

CLI = [str(Path(sys.executable).with_name("gpu-export"))]


def run(stack, token: str | None, *args: str, timeout: float = 180) -> tuple[int, list[dict], str]:
    auth = ["--token", token] if token else []
    p = subprocess.run([*CLI, "--url", stack.url, *auth, "--retry-for", "2", *args], capture_output=True, text=True,
                       timeout=timeout)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return p.returncode, lines, p.stderr


def signed_up(stack) -> str:
    code, lines, err = run(stack, None, "signup")
    assert code == 0, err
    return lines[0]["token"]


def test_submit_wait_download(stack, clip, tmp_path):
    token = signed_up(stack)
    spec = tmp_path / "spot.json"
    spec.write_text(json.dumps(OVERLAY))
    out = tmp_path / "out.mp4"
    code, lines, err = run(stack, token, "submit", str(clip), "--overlay", str(spec), "--wait", "--download", str(out))
    assert code == 0, err
    kinds = [line["event"] for line in lines]
    assert kinds[0] == "transfer" and lines[0]["what"] == "upload clip.mp4" and lines[-2]["what"] == "download"
    assert [k for k in kinds if k != "transfer"][-2:] == ["finished", "downloaded"] and "created" in kinds
    assert any(line["event"] == "job_event" and line["type"] == "complete" for line in lines)
    with av.open(str(out)) as video:
        assert video.streams.video[0].frames in (0, 45) and sum(1 for _ in video.decode(video=0)) == 45

    job_id = next(line["job_id"] for line in lines if line["event"] == "created")
    code, lines, _ = run(stack, token, "status", job_id)
    assert code == 0 and len(lines) == 1 and lines[0]["event"] == "job" and lines[0]["status"] == "complete"
    assert lines[0]["job_id"] == job_id
    code, lines, _ = run(stack, token, "wait", job_id)  # waits without --wait
    assert code == 0 and lines[-1]["event"] == "finished" and lines[-1]["status"] == "complete"
    code, lines, _ = run(stack, token, "list", "--status", "complete")
    assert code == 0 and [line["job_id"] for line in lines] == [job_id]


def test_a_multi_clip_job_names_its_files(stack, clip, tmp_path):
    token = signed_up(stack)
    reel = tmp_path / "reel.json"
    reel.write_text(json.dumps({"type": "multi_clip", "params": {"clips": [
        {"input_video_key": "@1", "end_s": 0.5}, {"input_video_key": "@2", "start_s": 1.0}]}}))
    code, lines, err = run(stack, token, "submit", str(clip), str(clip), "--job", str(reel), "--wait")
    assert code == 0, err
    assert lines[-1]["event"] == "finished" and lines[-1]["total_frames"] == 15 + 15


def test_exit_codes(stack, clip, tmp_path):
    token = signed_up(stack)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"highlight_regions": []}))
    code, _, err = run(stack, token, "submit", str(clip), "--overlay", str(bad))
    assert code == 2 and "highlight_regions" in err  # refused before anything is uploaded

    code, _, err = run(stack, token, "status", "no-such-job")
    assert code == 3 and "no such job" in err

    code, _, err = run(stack, "u1.nobody.0000", "list")
    assert code == 3 and "invalid token" in err

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    code, lines, err = run(stack, token, "submit", str(broken), "--overlay", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err

    spec = tmp_path / "spot.json"
    spec.write_text(json.dumps(OVERLAY))
    code, lines, err = run(stack, token, "submit", str(clip), "--overlay", str(spec), "--wait", "--timeout", "0.01")
    assert code == 5 and lines[-1]["event"] == "job"

    p = subprocess.run([*CLI, "--url", "http://127.0.0.1:9", "--retry-for", "0", "health"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 4 and "unavailable" in p.stderr


def test_a_failed_job_exits_1(stack, tmp_path):
    token = signed_up(stack)
    spec = tmp_path / "spot.json"
    spec.write_text(json.dumps(OVERLAY))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    code, lines, err = run(stack, token, "submit", str(junk), "--overlay", str(spec), "--wait")
    assert code == 1 and lines[-1]["event"] == "finished" and lines[-1]["status"] == "error"


def test_help_lists_every_command():
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("signup", "upload", "submit", "wait", "status", "list", "cancel", "retry", "download", "health",
                    "cost"):
        assert f"    {command} " in out


def on_terminal(stack, *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdout, as a person at a shell does."""
    import os
    import pty

    leader, follower = pty.openpty()
    p = subprocess.Popen([*CLI, "--url", stack.url, *args], stdout=follower, stderr=subprocess.PIPE, text=True)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    p.wait(timeout=180)
    return p.returncode, shown.decode(errors="replace")


def test_on_a_terminal_it_shows_bars_and_words(stack, clip, tmp_path):
    token = signed_up(stack)
    spec = tmp_path / "spot.json"
    spec.write_text(json.dumps(OVERLAY))
    code, shown = on_terminal(stack, "--token", token, "submit", str(clip), "--overlay", str(spec), "--wait")
    assert code == 0 and "upload clip.mp4" in shown and "render complete" in shown and "100%" in shown
    assert not any(line.startswith("{") for line in shown.splitlines())
    code, shown = on_terminal(stack, "cost", "--price-per-hour", "0.5")
    assert code == 0 and "price:               $0.500000/h (g4dn.2xlarge)" in shown
