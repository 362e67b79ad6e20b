"""mini-LIBERO: a LIBERO-style MuJoCo benchmark (scenes, suites, experts, gymnasium envs, LeRobot env type)."""
