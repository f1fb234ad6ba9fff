import Testing
@testable import Schema

/// The rewriting of `up`/`down` expressions that the triggers are built from: pure, no database.
@Suite struct SQLTextTests {
    @Test func qualifiesBareColumnsOnlyWithTheRowName() {
        let up = "CASE WHEN instr(name, ' ') > 0 THEN substr(\"name\", 1, instr(name, ' ') - 1) ELSE users.name || 'name' END"
        let qualified = SQLText.qualifyingColumns(in: up, ["name", "email"], with: "NEW")
        #expect(qualified == "CASE WHEN instr(NEW.\"name\", ' ') > 0 THEN substr(NEW.\"name\", 1, instr(NEW.\"name\", ' ') - 1) ELSE users.name || 'name' END")
    }

    @Test func leavesFunctionsOfAColumnsNameAndCommentsAlone() {
        let qualified = SQLText.qualifyingColumns(in: "trim(trim) -- trim\n|| Email", ["trim", "email"], with: "OLD")
        #expect(qualified == "trim(OLD.\"trim\") -- trim\n|| OLD.\"Email\"")
    }

    @Test func leavesAKeywordUnquotedEvenWhenAColumnHasItsName() {
        let qualified = SQLText.qualifyingColumns(in: "CASE WHEN \"end\" > 0 THEN \"end\" ELSE 0 END", ["end"], with: "NEW")
        #expect(qualified == "CASE WHEN NEW.\"end\" > 0 THEN NEW.\"end\" ELSE 0 END")
    }

    @Test func refusesAnExpressionWithASubquery() {
        #expect(SQLText.qualifyingColumns(in: "(SELECT name FROM teams WHERE teams.id = team_id)", ["name", "team_id"], with: "NEW") == nil)
    }

    @Test func replacesOneColumnByAnotherQuoted() {
        #expect(SQLText.replacingColumn(in: "lower(name) || \"name\" || t.name", "name", with: "full name") == "lower(\"full name\") || \"full name\" || t.name")
    }
}
