"""Restyling many and long videos beyond one machine, on Ray (``restyle-video ... --cluster``).

- segments.py: cut a video into segments at keyframes, on the driver, from its packets
- work.py: what a worker does with a segment (decode, restyle, smooth, encode), with the single-machine
  pieces (sources.FrameStamps, pipeline.restyle_frames, sinks.FileSink)
- worker.py: the worker that keeps a stylizer loaded (a Ray actor)
- join.py: the segments joined, in order, into one output with the input's other streams (remux.py)
- run.py: the driver: workers, scheduling, retries, progress
- cli.py: restyle-video's several-inputs and cluster arguments

Only run.py imports Ray, and only when a run asks for the cluster: the base install runs the rest.
"""
