"""The paper's tables (LongBench Tables 1 and 3, RULER Tables 2 and 4): CSV, Markdown, LaTeX."""
