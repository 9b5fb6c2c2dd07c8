"""What crosses between processes: the messages, the channel they travel on, and what
monitor and worker agree on outside it. Imported by both sides; imports neither."""
