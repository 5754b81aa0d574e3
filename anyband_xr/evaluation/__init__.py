"""Benchmarks: the paper's quality protocols on held-out real data (``anyband benchmark quality``) and the
performance figures (``anyband benchmark speed``), written as Markdown tables with their raw rows."""
