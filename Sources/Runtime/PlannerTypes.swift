import Planner

/// The planner's record of a migration (the schema engine has a richer type of the same name).
typealias PlannerMigration = AppliedMigration
