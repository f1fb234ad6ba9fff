/// The seed app's two migrations in PostgreSQL's SQL (`serial` keys, `split_part`/`strpos`), shared by the
/// engine's tests and the end-to-end story.
public enum PostgresFixtures {
    public static let createUsers = """
        operations:
          - create_table:
              name: users
              columns:
                - {name: id, type: serial, pk: true}
                - {name: name, type: text}
        """

    public static let splitName = """
        operations:
          - add_column:
              table: users
              column: {name: first_name, type: text, nullable: true}
              up: "split_part(name, ' ', 1)"
          - add_column:
              table: users
              column: {name: last_name, type: text, nullable: true}
              up: "CASE WHEN strpos(name, ' ') > 0 THEN substr(name, strpos(name, ' ') + 1) ELSE '' END"
          - drop_column:
              table: users
              column: name
              down: "trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"
        """
}
