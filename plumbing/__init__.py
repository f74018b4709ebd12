"""What the live worker, replay, the dashboard, the simulator and the benches all stand on."""
