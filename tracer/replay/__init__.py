"""Replay: rebuilds a recorded run in Unicorn from the trace alone (its recorded inputs),
to verify a recording and to answer "what were the registers at step N" through an index.

Imports unicorn and capstone; never imports analysis, pandas or plotly."""
