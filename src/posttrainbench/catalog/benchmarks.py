"""The seven benchmarks of the paper, plus the CPU demo benchmark.

``local_test_file`` / ``local_train_file`` are paths under the data root (``PTB_DATA_DIR``
if set, else the copies shipped in ``posttrainbench/resources``); the hub id + revision is
used where no local file exists (GPQA: gated, hub only).

``items_sha256`` pins each evaluation set by content (``posttrainbench.data.provenance``): the
digest of the full set as the evaluator asks it, measured on the shipped files (BFCL: the data
files of the pinned ``bfcl-eval`` wheel). GPQA is unpinned: its data is gated and was never
available to verify; its digest and hub commit are recorded with every result.
"""

from __future__ import annotations

from ..domain import Benchmark, Decoding

_PAPER: tuple[Benchmark, ...] = (
    Benchmark(
        id="aime2025",
        display_name="AIME 2025",
        hub_id="math-ai/aime25",
        local_test_file="aime2025/test.jsonl",
        items_sha256="f5905ef813904e420868bd95dd42e6e1ce2ba2b06d2195d2d21104fd899234d9",
        full_size=30,
        dev_size=10,
        max_tokens_ladder=(16000, 12000, 8000),
        allowed_training_data="Any data except AIME 2025 problems (e.g. older AIME, MATH, NuminaMath).",
    ),
    Benchmark(
        id="arenahardwriting",
        display_name="Arena-Hard v2 (creative writing)",
        local_test_file="arenahardwriting/question.jsonl",
        items_sha256="81a012ab07ecbaaa265486431eae8339c965401c741ddd5b54312153da925024",
        full_size=250,
        dev_size=25,
        max_tokens_ladder=(16000, 12000, 8000),
        decoding=Decoding(temperature=0.0, max_tokens=16000),
        allowed_training_data="Any writing/chat data except Arena-Hard prompts and answers.",
        grader="llm",
        metric="win_rate",
    ),
    Benchmark(
        id="bfcl",
        display_name="BFCL exec_simple",
        local_test_file="bfcl/BFCL_v4_exec_simple.json",  # else from the bfcl-eval wheel
        items_sha256="5ea1e140bf412163726bbf8fdb02a19039a5d072e971fd660ebf60e86a4ab3eb",
        full_size=100,
        dev_size=20,
        max_tokens_ladder=(4000, 3000, 2000),
        allowed_training_data="Function-calling data other than BFCL (e.g. xLAM, glaive).",
    ),
    Benchmark(
        id="gpqamain",
        display_name="GPQA (main)",
        hub_id="Idavidrein/gpqa",
        hub_config="gpqa_main",
        test_split="train",
        local_test_file="gpqamain/gpqa_main.jsonl",  # optional: records in the hub's columns
        full_size=448,
        dev_size=40,
        max_tokens_ladder=(16000, 12000, 8000),
        allowed_training_data="Science QA data other than GPQA (e.g. SciQ, MMLU auxiliary train).",
    ),
    Benchmark(
        id="gsm8k",
        display_name="GSM8K",
        hub_id="openai/gsm8k",
        hub_config="main",
        local_test_file="gsm8k/test.jsonl",
        local_train_file="gsm8k/train.jsonl",
        items_sha256="aca224445c7372222d34b9c230943641c6f335634dfb5765600e73350bf4b012",
        full_size=1319,
        dev_size=100,
        max_tokens_ladder=(4000, 3000, 2000),
        decoding=Decoding(temperature=0.0, max_tokens=4000),
        fewshot=10,
        allowed_training_data="The GSM8K train split and any other math data except the GSM8K test split.",
    ),
    Benchmark(
        id="healthbench",
        display_name="HealthBench (easy)",
        local_test_file="healthbench/healthbench_easy.jsonl",
        items_sha256="2d5a8e89f5d9d6e6ccea31b3300d15f8d86fa524055c555df8844691ef4175c4",
        full_size=245,
        dev_size=25,
        max_tokens_ladder=(16000, 12000, 8000),
        allowed_training_data="Medical dialogue data other than HealthBench.",
        grader="llm",
        metric="rubric_score",
    ),
    Benchmark(
        id="humaneval",
        display_name="HumanEval",
        hub_id="openai/openai_humaneval",
        local_test_file="humaneval/HumanEval.jsonl.gz",
        items_sha256="c4f3d00d84589a0a0b7d84d99bb9111173b5dc4079d340b6e34cdee46559e31d",
        full_size=164,
        dev_size=30,
        max_tokens_ladder=(4000, 3000, 2000),
        allowed_training_data="Code data other than HumanEval (e.g. MBPP, CodeAlpaca).",
        metric="pass@1",
    ),
)

# CPU demo: the arithmetic steps GSM8K annotates in its solutions ("<<48/2=24>>"). A small
# model can learn these within minutes on a CPU, so the demo shows a real, training-caused
# change. Test items come from the test split's annotations, training data from the train split's.
_DEMO: tuple[Benchmark, ...] = (
    Benchmark(
        id="gsm8k-calc",
        display_name="GSM8K calculator steps (CPU demo)",
        local_test_file="gsm8k/test.jsonl",
        local_train_file="gsm8k/train.jsonl",
        items_sha256="96568f61b74ec40d5b84085a63e95eba6ddac895c06aa545ee59c43949c747f4",
        full_size=200,
        dev_size=50,
        max_tokens_ladder=(16, 12, 8),
        decoding=Decoding(temperature=0.0, max_tokens=16),
        allowed_training_data="Calculator steps of the GSM8K train split.",
        demo=True,
    ),
)

BENCHMARKS: dict[str, Benchmark] = {b.id: b for b in (*_PAPER, *_DEMO)}
