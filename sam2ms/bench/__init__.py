"""``sam2ms bench``: latency, throughput, memory and accuracy of every backend and precision,
each also as a ratio to the PyTorch reference measured in the same run.
"""
