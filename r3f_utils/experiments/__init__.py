"""One module per experiment family: the steps a notebook calls, one line each."""
