"""qora-digits: a Flower app that shows Qora Edge excluding Byzantine SuperNodes."""
