# Vault policy for ${{ values.name }} in ${{ values.environment }}, owned by ${{ values.owner }}.
path "secret/data/${{ values.environment }}/${{ values.name }}/*" {
  capabilities = ["read", "list"]
}
