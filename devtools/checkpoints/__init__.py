"""Checkpoints made from the real transformers config classes with random weights: tiny
ones of every family (tests, `make bench`'s build times) and real-width ones with few layers
(`make trt-real-shapes`)."""
