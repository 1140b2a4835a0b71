"""Software templates (Backstage `scaffolder.backstage.io/v1beta3`): parsing, `${{ }}` expressions,
the action registry and durable runs."""
