"""The one input layer: `source` opens an input, `records` yields its rows, `text`/`tokens` check them."""
