"""The chaos run (tests/chaos/harness, `make chaos`), reduced to a few jobs so that it fits in `make test`: every kind
of fault once (SIGKILL, SIGTERM, a spot notice, a lost queue message, a restart of wrangler dev, a
delaying and dropping proxy) and every check of the full `make chaos` run."""

from __future__ import annotations

from .harness import ChaosConfig, run_chaos


def test_no_job_is_lost_duplicated_or_leaked(tmp_path):
    report = run_chaos(ChaosConfig(jobs=6, workers=3, proxied_workers=1, kills=1, terms=1, spots=1, losses=1,
                                   restart=True, upscale_jobs=0, seed=7, workdir=tmp_path / "chaos"))
    summary = f"\n{report.details()}\n{report.table()}\n" + "\n".join(report.problems)
    print(summary)
    assert not report.problems, summary
    assert report.statuses == {"complete": 6}, summary
    for kind in ("kill", "term", "spot", "lose", "restart"):
        assert report.injected(kind)[0] >= 1, summary  # more when one landed after the render's last frame
    assert report.injected("kill")[1] >= 1, summary
    assert report.injected("term")[1] + report.injected("spot")[1] >= 1, summary
    assert report.port_kept, summary
