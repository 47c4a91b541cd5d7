"""The reference solutions of the chapters' exercises, one module per chapter (ch01, ch02, ...).

Each function has the name and arguments of the stub the student completes. The notebooks show them folded
(a `<details>` block under each exercise, generated from this code and compared with it by tests/test_solutions.py)
and run them through the chapter's checks at the end of the exercises.
"""
