"""The shipped configs (YAML), installed as the package ``mot.configs`` so they can be named."""
