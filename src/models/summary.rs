//! torchsummary's table and the state-dict listing of seed 3.
