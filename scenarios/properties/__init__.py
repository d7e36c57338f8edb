"""Property files shipped with mlmarket: incentive properties that `mlmarket check` runs."""
