"""The fragility model (docs/architecture.md §5): graph features, Monte Carlo labels, the
heterogeneous message-passing network, its training, evaluation and explanations."""

import warnings

# torch_geometric scripts a few helpers with torch.jit.script at import, which this torch
# deprecates; nothing here can act on it, so it stays out of every command's output.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                        category=FutureWarning)
