# Earshot: one entry point for people and CI. Every target runs from a clean clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Debian packages: decoding (ffmpeg), speech synthesis for the wake-word data (espeak-ng, festival),
# Russian text to synthesise from (fortunes-ru), music negatives for the cry gate (fluidsynth with the
# fluid-soundfont-gm General MIDI soundfont), audio tools (sox, flac). RHVoice's Russian voices come from
# Debian's non-free component, which setup adds as an apt source. Operations tests: headless chromium loads the
# store's /ops page; docker-compose validates deploy/compose.yaml (no Docker engine needed).
APT_PACKAGES := ffmpeg espeak-ng sox libsox-fmt-all flac festival festvox-ru fortunes-ru libsndfile1 rhvoice rhvoice-russian chromium docker-compose \
	fluidsynth fluid-soundfont-gm
# Training only (make train-apt, about 700 MB, without Tux Paint itself, which the stamps recommend): recorded
# sound effects, music and spoken words under the GPL, the cry gate's recorded negatives
# (services/classifier/packaged_sounds.py); the music is also what eval-kws plays speech over.
TRAIN_APT_PACKAGES := tuxpaint-stamps-default wesnoth-1.16-data widelands-data
NON_FREE_SOURCE := /etc/apt/sources.list.d/debian-non-free.sources
PYTEST_ARGS ?=

.PHONY: setup apt train-apt venv broker test lint demo run bench train-classifier eval-classifier train-kws eval-kws eval-kws-enrollment calibrate-kws simulate-kws playback-sim clean

setup: apt venv broker ## Install everything: Debian packages, the pinned virtualenv, RabbitMQ plugins.

broker: ## The local RabbitMQ's management API (tests read queue depths from it) and Prometheus endpoint.
	@rabbitmq-plugins list -e -m 2>/dev/null | grep -q '^rabbitmq_management$$' && \
	  rabbitmq-plugins list -e -m 2>/dev/null | grep -q '^rabbitmq_prometheus$$' || \
	  rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus

apt: ## Debian packages the services, the tests and the wake-word synthesis need.
	@$(call apt_install,$(APT_PACKAGES),)

train-apt: ## Debian packages only the cry gate's training and evaluation need (recorded negatives, GPL).
	@$(call apt_install,$(TRAIN_APT_PACKAGES),--no-install-recommends)

# Installs what is missing of $(1), with apt-get options $(2); RHVoice needs Debian's non-free component as an apt source.
define apt_install
missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "apt-get install: $$missing"; \
  test -f $(NON_FREE_SOURCE) || printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
    'Suites: bookworm' 'Components: non-free' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' > $(NON_FREE_SOURCE); \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing; \
else echo "Debian packages present: $(1)"; fi
endef

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt requirements/train.txt requirements/train-nodeps.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/dev.txt -r requirements/train.txt
	$(PIP) install -q -e clients/python  # the client library; playback-sim and the stream bench use it
	$(PIP) install -q --no-deps -r requirements/train-nodeps.txt
	touch $@

test: ## Run the whole suite against the local RabbitMQ and PostgreSQL.
	$(PY) -m pytest $(PYTEST_ARGS)

run: setup ## Start every service on loopback against the local RabbitMQ and PostgreSQL; Ctrl-C stops all.
	$(PY) -m services run

demo: setup ## Send the committed samples through the running stack and print the answers.
	$(PY) -m services demo

bench: ## Speed of the classifier, the kws scan, the whole stack, streams and replay-dlq (medians of several runs).
	$(PY) -m benchmarks.classifier
	$(PY) -m benchmarks.kws
	$(PY) -m benchmarks.stack
	$(PY) -m benchmarks.streams
	$(PY) -m benchmarks.replay_dlq

train-classifier: train-apt ## Retrain the cry models from ../shared/data; rewrites the ONNX files and the model card.
	$(PY) -m services.classifier train

eval-classifier: train-apt ## Group-disjoint cross-validation of baselines and the shipped model; writes MODEL_CARD.md.
	$(PY) -m services.classifier evaluate

train-kws: ## Synthesise the wake-word data and retrain the spotter.
	$(PY) -m services.kws train

eval-kws: train-apt ## Held-out-voice evaluation of the spotter (also over music); writes services/kws/MODEL_CARD.md.
	$(PY) -m services.kws evaluate

eval-kws-enrollment: ## Enroll the held-out voices with 10/30/100 clips; writes MODEL_CARD.md's enrollment section.
	$(PY) -m services.kws enroll-evaluate

calibrate-kws: ## Choose the playback-side threshold against the simulated echo path.
	$(PY) -m services.kws calibrate

simulate-kws: ## Self-trigger report with and without skip_kws muting.
	$(PY) -m services.kws simulate

playback-sim: ## Stream tracks through a gateway of its own at real time: is each interval before the player?
	$(PY) -m services.kws playback-sim

lint:
	$(VENV)/bin/ruff check services tests benchmarks clients

clean:
	rm -rf .cache .pytest_cache
