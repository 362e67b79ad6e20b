# Two commands do all set-up on a fresh machine: `make demo` and `make test` (both run `make install`).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export TOKENIZERS_PARALLELISM := false

# A Python 3.12 found without help: $PYTHON312, python3.12 on PATH, then pyenv's versions (whose
# shim fails unless PYENV_VERSION is set), then the usual system locations.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 \
	/root/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	if $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then echo $$p; break; fi; done)

.PHONY: install test test-all lint demo teacher teacher-multimodal edge-variants clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON312)" ]; then echo "error: no Python 3.12 found; set PYTHON312=/path/to/python3.12" >&2; exit 1; fi
	@if [ ! -x $(PY) ]; then echo "creating $(VENV) with $(PYTHON312)"; $(PYTHON312) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not slow and not gpu and not trt and not libero"

test-all: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# The main job on the embedded default teacher (policies/assets/mini_libero_smolvla_teacher/).
demo: install
	$(VENV)/bin/snapflow-demo

# Reproduces the embedded default teacher (policies/assets/mini_libero_smolvla_teacher/README.md) in two
# lerobot-train runs on 2 CPU cores. Stage 1: 1600 demos, 40 per task of all four suites on the libero layout
# with DART noise 0.05 (~18 min), then 10000 steps from scratch (~55 min idle). Stage 2: 800 demos with
# action noise $(TEACHER_FT_NOISE) (~12 min), then 9000 fine-tuning steps (~35 min idle): the smaller noise makes
# the demonstrated action chunks less random, which is what the 10-step sampler reproduces (README, "The
# embedded teacher"). Stage 3: 9000 more steps on the same demos at half the learning rate (~50 min idle).
# Re-running continues an interrupted run (resume=true). It overwrites policies/assets/mini_libero_smolvla_teacher/.
# One fine-tuning run of a teacher stage (resumes when its out= holds a checkpoint):
# $(call finetune,<pretrained dir>,<dataset>,<out>,<steps>,<lr>,<seed>,<save_freq>)
define finetune
	if [ -f $(3)/checkpoints/last/pretrained_model/train_config.json ]; then \
		$(VENV)/bin/snapflow-train out=$(3) dataset=$(2) steps=$(4) resume=true; \
	else \
		$(VENV)/bin/snapflow-train pretrained=$(1) dataset=$(2) out=$(3) steps=$(4) batch_size=32 \
			save_freq=$(7) num_workers=2 seed=$(6) log_freq=100 \
			"extra=['--policy.optimizer_lr=$(5)','--policy.scheduler_warmup_steps=100', \
			'--policy.scheduler_decay_steps=$(4)','--policy.scheduler_decay_lr=1e-5']"; \
	fi
endef

TEACHER_RUN ?= outputs/teacher_run
TEACHER_STEPS ?= 10000
TEACHER_FT_STEPS ?= 9000
TEACHER_FT_NOISE ?= 0.02
TEACHER_FT2_STEPS ?= 9000
teacher: install
	[ -d $(TEACHER_RUN)/data ] || $(VENV)/bin/snapflow-collect suite=all episodes_per_task=40 \
		resolution=64 workers=2 seed=0 out=$(TEACHER_RUN)/data
	if [ -f $(TEACHER_RUN)/teacher/checkpoints/last/pretrained_model/train_config.json ]; then \
		$(VENV)/bin/snapflow-train out=$(TEACHER_RUN)/teacher dataset=$(TEACHER_RUN)/data \
			steps=$(TEACHER_STEPS) resume=true; \
	else \
		$(VENV)/bin/snapflow-train policy=smolvla tiny=true tiny_width=128 assets=$(TEACHER_RUN)/assets \
			dataset=$(TEACHER_RUN)/data out=$(TEACHER_RUN)/teacher steps=$(TEACHER_STEPS) batch_size=32 \
			save_freq=2000 num_workers=2 seed=1000 log_freq=100 "extra=['--policy.optimizer_lr=5e-4', \
			'--policy.scheduler_warmup_steps=300','--policy.scheduler_decay_steps=$(TEACHER_STEPS)', \
			'--policy.scheduler_decay_lr=1e-5']"; \
	fi
	[ -d $(TEACHER_RUN)/data_finetune ] || $(VENV)/bin/snapflow-collect suite=all episodes_per_task=20 \
		resolution=64 workers=2 seed=0 noise_std=$(TEACHER_FT_NOISE) out=$(TEACHER_RUN)/data_finetune
	$(call finetune,$(TEACHER_RUN)/teacher/checkpoints/last/pretrained_model,$(TEACHER_RUN)/data_finetune,$\
		$(TEACHER_RUN)/finetune,$(TEACHER_FT_STEPS),2e-4,1000,1500)
	$(call finetune,$(TEACHER_RUN)/finetune/checkpoints/last/pretrained_model,$(TEACHER_RUN)/data_finetune,$\
		$(TEACHER_RUN)/finetune2,$(TEACHER_FT2_STEPS),1e-4,1001,1500)
	$(PY) -m snapflow.policies.embedded $(TEACHER_RUN)/finetune2/checkpoints/last/pretrained_model \
		$(TEACHER_RUN)/assets/tiny_smolvlm

# Reproduces the multimodal probe's teacher (policies/assets/mini_libero_multimodal_teacher/README.md):
# 100 demos per task of the 4-task `multimodal` suite (the expert passes the barrier on a random side, going
# diagonally to beside it: MM_DETOUR), then the embedded default teacher fine-tuned on them with lerobot-train,
# then 2000 steps on demos with action noise 0.02, then 2000 steps on noise-free demos that show every layout
# in both modes (paired_modes: the same observation with both strategies up to the choice). Re-running resumes.
MM_RUN ?= outputs/multimodal_teacher_run
MM_STEPS ?= 4000
MM_FT_STEPS ?= 2000
MM_DETOUR ?= diagonal
teacher-multimodal: install
	[ -d $(MM_RUN)/data ] || $(VENV)/bin/snapflow-collect suite=multimodal episodes_per_task=100 \
		resolution=64 workers=2 seed=0 detour=$(MM_DETOUR) out=$(MM_RUN)/data
	[ -d $(MM_RUN)/base ] || $(PY) -c "from snapflow.policies.embedded import materialize_teacher; \
		materialize_teacher('$(MM_RUN)/base')"
	$(call finetune,$(MM_RUN)/base,$(MM_RUN)/data,$(MM_RUN)/teacher,$(MM_STEPS),2e-4,1000,1000)
	[ -d $(MM_RUN)/data_finetune ] || $(VENV)/bin/snapflow-collect suite=multimodal episodes_per_task=100 \
		resolution=64 workers=2 seed=0 noise_std=0.02 detour=$(MM_DETOUR) out=$(MM_RUN)/data_finetune
	$(call finetune,$(MM_RUN)/teacher/checkpoints/last/pretrained_model,$(MM_RUN)/data_finetune,$\
		$(MM_RUN)/finetune,$(MM_FT_STEPS),2e-4,1000,1000)
	[ -d $(MM_RUN)/data_paired ] || $(VENV)/bin/snapflow-collect suite=multimodal episodes_per_task=100 \
		resolution=64 workers=2 seed=1 noise_std=0 paired_modes=true detour=$(MM_DETOUR) out=$(MM_RUN)/data_paired
	$(call finetune,$(MM_RUN)/finetune/checkpoints/last/pretrained_model,$(MM_RUN)/data_paired,$\
		$(MM_RUN)/paired,$(MM_FT_STEPS),2e-4,1000,1000)
	$(PY) -m snapflow.policies.embedded $(MM_RUN)/paired/checkpoints/last/pretrained_model \
		$(MM_RUN)/base/smolvlm policies/assets/mini_libero_multimodal_teacher

# What each edge-speed variant costs in success (README, "Speed"): the SnapFlow student of a `make demo` run
# exported as float32 and dynamic int8 (opset 23, the default, and opset 20), static int8 (calibrated on the
# demo's dataset), and with the cameras resized to 32 px inside the graph (4x fewer patches, as 512 -> 256 px
# at real size) both as trained and after distilling a student at 32 px (1500 steps, ~4 min); then every
# export evaluated by snapflow-eval on the demo's four suites (5 episodes per task: 200 per variant).
EDGE_DEMO ?= $(lastword $(sort $(wildcard outputs/demo-*)))
EDGE_OUT ?= $(EDGE_DEMO)/edge
EDGE_WORKERS ?= 2
EDGE_VARIANTS := fp32:quantize=none int8:quantize=int8 \
	int8_static:quantize=int8_static,calibration=$(EDGE_DEMO)/data \
	fp32_opset20:quantize=none,opset=20 int8_opset20:quantize=int8,opset=20 \
	int8_32px_untuned:quantize=int8,image_size=32 int8_32px:quantize=int8,policy=$(EDGE_OUT)/student_32px
edge-variants: install
	@[ -f "$(EDGE_DEMO)/student/model.safetensors" ] || { echo "error: EDGE_DEMO=$(EDGE_DEMO) has no student (run make demo)" >&2; exit 2; }
	[ -f $(EDGE_OUT)/student_32px/checkpoints/last/pretrained_model/model.safetensors ] || \
		$(VENV)/bin/snapflow-distill teacher=$(EDGE_DEMO)/teacher dataset=$(EDGE_DEMO)/data \
			out=$(EDGE_OUT)/student_32px steps=1500 batch_size=8 lr=1e-4 save_freq=1500 log_freq=100 \
			"extra=['--policy.resize_imgs_with_padding=[32,32]']"
	for v in $(EDGE_VARIANTS); do name=$${v%%:*}; args=$$(echo $${v#*:} | tr , ' '); \
		case "$$args" in *policy=*) ;; *) args="$$args policy=$(EDGE_DEMO)/student";; esac; \
		[ -f $(EDGE_OUT)/$$name/contract.json ] || $(VENV)/bin/snapflow-export out=$(EDGE_OUT)/$$name $$args \
			|| exit 1; done
	$(VENV)/bin/snapflow-eval "exports={$$(for v in $(EDGE_VARIANTS); do n=$${v%%:*}; printf '%s: %s, ' $$n $(EDGE_OUT)/$$n; \
		done | sed 's/, $$//')}" "suites=[spatial,object,goal,long]" episodes=5 workers=$(EDGE_WORKERS) latency_calls=20 \
		out=$(EDGE_OUT)/eval

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache *.egg-info
