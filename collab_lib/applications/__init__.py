"""Applications of device–cloud collaboration (chapter 8): on-device re-ranking, livestream highlights,
assistant routing. Each module composes the rest of the library; ``checks`` holds the labs' check cells."""
