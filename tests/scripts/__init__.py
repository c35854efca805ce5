"""The shell scripts of scripts/, run for real."""
