"""What every kind of test shares: one deadline poll (`poll`), the test plan built from
Kotim's as data (`plan`), and one way to stand up a real stack for a session (`stacks`)."""
