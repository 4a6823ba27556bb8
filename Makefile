# Two commands on a fresh machine: `make dev` runs the local stack, `make test` runs every test.
# Each installs what it needs first (scripts/setup.sh is idempotent).
PY := .venv/bin/python

.PHONY: setup dev test test-unit test-slow bench deploy-check clean

setup:
	@bash scripts/setup.sh

dev: setup
	@$(PY) -m scripts.localstack

test: setup
	@$(PY) -m pytest -q

test-unit: setup
	@$(PY) -m pytest -q tests/unit

# The long inputs too (a 90 s 1080p export); not part of `make test`.
test-slow: setup
	@$(PY) -m pytest -q --slow -m slow

bench: setup
	@for b in create_latency jwt_verify webhook_latency retention_sweep overlay_vs_transcode checkpoint_overhead \
	  upscale_stage editor_page; do $(PY) -m bench.$$b; done

deploy-check: setup
	@$(PY) -c "from scripts.localstack import wrangler; wrangler('deploy', '--dry-run', '--outdir', '.cache/deploy-dry-run')"

clean:
	rm -rf .wrangler .cache/deploy-dry-run wrangler.local-*.json

# Production: D1, R2 (+ CORS), queues + HTTP pull consumer, migrations, secrets, `wrangler deploy`.
# Idempotent; `make deploy DRY_RUN=1` prints the commands only. See README "Production".
.PHONY: deploy
deploy: setup
	@bash scripts/deploy.sh $(if $(filter-out 0,$(DRY_RUN)),--dry-run)

# Chaos run: N jobs (default 50) through the local stack while workers are killed, spot-stopped and cut
# off and wrangler dev restarts; checks that no job is lost, duplicated or leaked (scripts/chaos.py).
.PHONY: chaos
chaos: setup
	@$(PY) -m scripts.chaos --jobs $(or $(N),50)
