"""Pure maths under AutoInit: Gaussian moments, pooling windows, sanitizing of moments.

numpy and scipy only; nothing here imports Keras or any other part of the package.
"""
