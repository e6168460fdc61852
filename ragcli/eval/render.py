"""Terminal rendering of `ragcli eval` (rich), from the same dict that `--json` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def _num(values: dict[str, float] | None, key: str) -> str:
    if not values or key not in values:
        return "–"
    return f"{values[key]:.3f}"


def _ms(latency: dict[str, Any] | None, stat: str) -> str:
    if not latency or not latency["total"].get("n"):
        return "–"
    v = latency["total"][stat]
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def eval_table(report: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    s = report["set"]
    title = f"ragcli eval: {s['name']} ({s['format']}, {s['queries']} queries"
    index = report.get("index")
    if index:
        title += f"; {index['documents']} docs, {index['chunks']} chunks"
    title += ")"
    table = Table(
        title=title,
        title_justify="left",
        caption="doc: chunks collapsed to documents; nDCG and MRR at 10, hit and recall at k",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("configuration", overflow="fold", min_width=18)
    heads: tuple[str, ...] = ("doc\nnDCG", "doc\nMRR", "doc\nhit@1", "doc\nhit@k", "doc\nrec@k")
    heads += ("chunk\nnDCG", "chunk\nMRR", "ms\np50", "ms\np95")
    for head in heads:
        table.add_column(head, justify="right", no_wrap=True)
    for row in report["configurations"]:
        k = row["config"]["k"]
        doc, chunk = row["document"], row["chunk"]
        table.add_row(
            row["label"],
            _num(doc, "ndcg@10"),
            _num(doc, "mrr@10"),
            _num(doc, "hit@1"),
            _num(doc, f"hit@{k}"),
            _num(doc, f"recall@{k}"),
            _num(chunk, "ndcg@10"),
            _num(chunk, "mrr@10"),
            _ms(row["latency_ms"], "p50"),
            _ms(row["latency_ms"], "p95"),
        )
    return table


def render_eval(console: Console, report: dict[str, Any]) -> None:
    console.print(eval_table(report))
    notes = []
    s = report["set"]
    if s.get("skipped_queries"):
        notes.append(
            f"{s['skipped_queries']} queries have no relevant document in the judgements: skipped"
        )
    a = report.get("abstention")
    if a:
        notes.append(
            f"abstention (threshold {a['threshold']}): abstained on {a['abstained']}/"
            f"{a['unanswerable']} unanswerable queries, answered {a['answered']}/"
            f"{a['answerable']} of the others"
        )
    if s.get("missing_documents"):
        examples = ", ".join(s["missing_examples"][:3])
        notes.append(
            f"{s['missing_documents']} judged documents are not in the index (e.g. {examples}); "
            "they count as not retrieved"
        )
    if report.get("run") is None:
        notes.append(
            "ms: question → ranked chunks (embed + retrieve spans), caches for retrieval and "
            f"answers off, {report.get('settings', {}).get('repeats', 1)} measured pass(es) "
            "after 1 warm-up pass"
        )
    miss = report.get("embed_miss_ms")
    if miss:
        notes.append(
            f"a question never asked before also pays its embedding (dense, hybrid): "
            f"p50 {miss['p50']:.2f} ms, p95 {miss['p95']:.2f} ms ({miss['n']} measured)"
        )
    ingest = report.get("ingest")
    if ingest:
        notes.append(
            f"ingested {ingest['files']} files ({ingest['chunks_added']} chunks added, "
            f"{ingest['embedded']} embedded) in {ingest['seconds']:.1f} s"
        )
    for note in notes:
        console.print(f"[dim]{note}[/]")
