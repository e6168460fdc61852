"""Relevance sets for the eval tests: the shipped BEIR set of the sample corpus, and a toy
TREC set whose metrics were worked out by hand."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import REPO

SHIPPED = REPO / "eval" / "sample_corpus"


# -- a toy set, worked out by hand ----------------------------------------------------------
# Judgements (TREC qrels: qid iter docid grade). q4 judges nothing relevant: it is skipped.
TOY_QRELS = """\
q1 0 d1 2
q1 0 d2 1
q1 0 d3 0
q2 0 d4 1
q3 0 d5 1
q3 0 d6 3
q4 0 d1 0
"""


TOY_QUERIES = "q1\tfirst question\nq2\tsecond question\nq3\tthird question\nq4\tfourth question\n"


# The run, written out of order on purpose: trec_eval orders by score, not by line or rank.
# q1 → d3 d1 d7 d2; q2 → x1 … x10 then d4 at rank 11; q3 → d6 d5.
TOY_RUN = (
    "q1 Q0 d1 2 8.0 toy\nq1 Q0 d3 1 9.0 toy\nq1 Q0 d7 3 7.0 toy\nq1 Q0 d2 4 6.0 toy\n"
    + "".join(f"q2 Q0 x{i} {i} {20 - i}.0 toy\n" for i in range(1, 11))
    + "q2 Q0 d4 11 1.0 toy\nq3 Q0 d5 2 2.5 toy\nq3 Q0 d6 1 3.0 toy\n"
)


# By hand (gain = grade, discount = log2(rank + 1); log2 3 = 1.58496, log2 5 = 2.32193):
# q1: ranking d3(0) d1(2) d7(-) d2(1); relevant {d1, d2}
#     recall@1 = 0, recall@3 = 1/2, recall@5 = recall@10 = 2/2 = 1; hit@1 = 0, hit@3 = 1
#     MRR@10 = 1/2 (d1 at rank 2)
#     DCG@10 = 2/log2 3 + 1/log2 5 = 1.26186 + 0.43068 = 1.69254
#     ideal  = 2/log2 2 + 1/log2 3 = 2 + 0.63093 = 2.63093 → nDCG@10 = 0.64332
#     nDCG@3 = (2/log2 3) / 2.63093 = 0.47962
# q2: d4 is at rank 11, beyond every cut of 10: all metrics 0
# q3: ranking d6(3) d5(1) = the ideal order: recall@1 = 1/2, recall@3 = 1, hit@1 = 1,
#     MRR@10 = 1, nDCG@10 = 1
# Means over the 3 scored queries:
TOY_EXPECTED = {
    "recall@1": (0 + 0 + 0.5) / 3,  # 0.16667
    "recall@3": (0.5 + 0 + 1) / 3,  # 0.5
    "recall@5": (1 + 0 + 1) / 3,  # 0.66667
    "recall@10": (1 + 0 + 1) / 3,
    "hit@1": (0 + 0 + 1) / 3,  # 0.33333
    "hit@3": (1 + 0 + 1) / 3,  # 0.66667
    "mrr@10": (0.5 + 0 + 1) / 3,  # 0.5
    "ndcg@3": (0.47962 + 0 + 1) / 3,  # 0.49321
    "ndcg@10": (0.64332 + 0 + 1) / 3,  # 0.54777
}


def write_toy(folder: Path) -> Path:
    """The toy set (qrels, queries) and its run file, written into `folder`."""
    folder.mkdir()
    (folder / "qrels.txt").write_text(TOY_QRELS)
    (folder / "queries.tsv").write_text(TOY_QUERIES)
    (folder / "run.txt").write_text(TOY_RUN)
    return folder
