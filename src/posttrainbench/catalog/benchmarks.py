"""The seven benchmarks of the paper, plus the CPU demo benchmark.

``local_test_file`` / ``local_train_file`` are paths under the data root (``PTB_DATA_DIR``
if set, else the copies shipped in ``posttrainbench/resources``); the hub id + revision is
used where no local file exists (GPQA: gated, hub only).

``items_sha256`` pins each evaluation set by content (``posttrainbench.data.provenance``): the
digest of the full set as the evaluator asks it, and ``fewshot_sha256`` GSM8K's few-shot turns;
measured on the shipped files (BFCL: the data files of the pinned ``bfcl-eval`` wheel). GPQA is unpinned: its data is gated and was never
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
        items_sha256="99b8ec6738aa6aedbde4dabf60e4d13bba9816a957baeb893a993752fe03c0e8",
        full_size=30,
        dev_size=10,
        max_tokens_ladder=(16000, 12000, 8000),
        allowed_training_data="Any data except AIME 2025 problems (e.g. older AIME, MATH, NuminaMath).",
    ),
    Benchmark(
        id="arenahardwriting",
        display_name="Arena-Hard v2 (creative writing)",
        local_test_file="arenahardwriting/question.jsonl",
        items_sha256="d8815712a81adba42f44418cc10fdd2e048a8cc0ff617068a9257d83b498e411",
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
        items_sha256="a875c1876719d9bb1f2daebedabad29349c94e5930ac682eadd050e8f70dfb97",
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
        hub_aliases=("gsm8k",),
        hub_config="main",
        local_test_file="gsm8k/test.jsonl",
        local_train_file="gsm8k/train.jsonl",
        items_sha256="89c58267fd95da8fafaef7de8c5e81ca84f284fab109d9ed1df5539836f3cb31",
        fewshot_sha256="8f904e5679b5df6bf9ff67da7ea96d06cd1250b406c6c5db3e598040cad9dc74",
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
        items_sha256="8350229754b87a5c485113944cfba8b958400813130a0edebef6c85fae4b0bdd",
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
        hub_aliases=("openai_humaneval",),
        local_test_file="humaneval/HumanEval.jsonl.gz",
        items_sha256="ee309b970e70006af96c85c40c3467a6f0581d9799a40142a979b08a072e2da5",
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
        items_sha256="9ff5df58e0eee92e72ff1987a8343ae63200e8f1a87eedd9cafe444e1df70dae",
        full_size=200,
        dev_size=50,
        max_tokens_ladder=(16, 12, 8),
        decoding=Decoding(temperature=0.0, max_tokens=16),
        allowed_training_data="Calculator steps of the GSM8K train split.",
        demo=True,
    ),
)

BENCHMARKS: dict[str, Benchmark] = {b.id: b for b in (*_PAPER, *_DEMO)}
