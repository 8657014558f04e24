//! `#[pg_test]`s: internals that need a running PostgreSQL (`make pgtest`).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup_form() {
        Spi::run("SELECT lowcode.create_app('t', 'test')").unwrap();
        Spi::run(
            r#"SELECT lowcode.define_form('t', 'f', '{"properties": {"n": {"type": "integer", "minimum": 1}}}')"#,
        )
        .unwrap();
    }

    #[pg_test]
    fn current_version_is_cached_per_backend() {
        setup_form();
        crate::catalog::clear();
        let first = crate::catalog::current_form("t", "f").unwrap();
        let again = crate::catalog::current_form("t", "f").unwrap();
        assert_eq!(first.version_id, again.version_id);
        assert_eq!(crate::catalog::stats()["current_forms"], 1);
    }

    #[pg_test]
    fn validators_compile_once_per_version() {
        setup_form();
        crate::catalog::clear();
        let id = crate::catalog::current_form("t", "f").unwrap().version_id;
        let a = crate::catalog::validator(id).unwrap();
        let b = crate::catalog::validator(id).unwrap();
        assert!(std::rc::Rc::ptr_eq(&a, &b));
        assert_eq!(crate::catalog::stats()["validators"], 1);
    }

    #[pg_test]
    fn define_form_invalidates_this_backend_at_once() {
        setup_form();
        let before = crate::catalog::current_form("t", "f").unwrap().version_id;
        Spi::run(
            r#"SELECT lowcode.define_form('t', 'f', '{"properties": {"n": {"type": "integer", "minimum": 2}}}')"#,
        )
        .unwrap();
        let after = crate::catalog::current_form("t", "f").unwrap().version_id;
        assert_ne!(before, after);
    }

    #[pg_test]
    fn the_last_form_looked_up_follows_a_new_version() {
        setup_form();
        let (before, first) = crate::catalog::current_validator("t", "f").unwrap();
        let (again, second) = crate::catalog::current_validator("t", "f").unwrap();
        assert_eq!(before, again);
        assert!(std::rc::Rc::ptr_eq(&first, &second));
        Spi::run(
            r#"SELECT lowcode.define_form('t', 'f', '{"properties": {"n": {"type": "integer", "minimum": 2}}}')"#,
        )
        .unwrap();
        let (after, _) = crate::catalog::current_validator("t", "f").unwrap();
        assert_ne!(before, after);
        assert_eq!(after, crate::catalog::current_form("t", "f").unwrap());
    }

    #[pg_test]
    fn unknown_forms_and_apps_are_told_apart() {
        setup_form();
        assert!(matches!(
            crate::catalog::current_form("t", "nope"),
            Err(crate::catalog::CatalogError::UnknownForm(..))
        ));
        assert!(matches!(
            crate::catalog::current_form("nope", "f"),
            Err(crate::catalog::CatalogError::UnknownApp(_))
        ));
    }

    #[pg_test]
    fn check_record_returns_the_version_it_validated_against() {
        setup_form();
        let version: i64 = Spi::get_one(r#"SELECT lowcode.check_record('t', 'f', '{"n": 3}')"#)
            .unwrap()
            .unwrap();
        let current: i64 = Spi::get_one(
            "SELECT current_version_id FROM lowcode.forms WHERE app = 't' AND name = 'f'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(version, current);
    }

    #[pg_test(error = "lowcode: t.f: 1 validation error")]
    fn check_record_raises_for_invalid_data() {
        setup_form();
        Spi::run(r#"SELECT lowcode.check_record('t', 'f', '{"n": 0}')"#).unwrap();
    }

    #[pg_test]
    fn toasted_documents_are_read_in_place() {
        setup_form();
        // A document large enough to be compressed/toasted when stored.
        Spi::run("CREATE TABLE docs AS SELECT jsonb_build_object('n', 5, 'pad', repeat('x', 100000)) AS d").unwrap();
        let ok: bool = Spi::get_one("SELECT lowcode.conforms('t', 'f', d) FROM docs")
            .unwrap()
            .unwrap();
        assert!(ok);
    }

    /// A SECURITY DEFINER function owned by the (superuser) test role, called by
    /// `lc_test_invoker`: inside it current_user is the owner, the query runs as the role it
    /// names (`lc_test_publisher`, as a workflow call runs as the workflow's publisher), and
    /// afterwards (also after the query failed) the owner is back.
    fn definer_calling_as_publisher() {
        Spi::run("CREATE ROLE lc_test_invoker").unwrap();
        Spi::run("CREATE ROLE lc_test_publisher").unwrap();
        Spi::run(
            r#"CREATE FUNCTION public.as_publisher(q text) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER AS $$
               DECLARE inner_user jsonb; failed text := 'no';
               BEGIN
                   inner_user := lowcode.call_as('lc_test_publisher', q, '{}');
                   BEGIN
                       PERFORM lowcode.call_as('lc_test_publisher', 'SELECT 1/0', '{}');
                   EXCEPTION WHEN division_by_zero THEN failed := current_user;
                   END;
                   RETURN jsonb_build_object('inside', inner_user, 'outer', lowcode.invoker()::regrole::text,
                                             'after', current_user, 'after_error', failed);
               END $$"#,
        )
        .unwrap();
        Spi::run("GRANT EXECUTE ON FUNCTION public.as_publisher(text) TO lc_test_invoker").unwrap();
    }

    #[pg_test]
    fn call_as_switches_to_the_publisher_and_back() {
        definer_calling_as_publisher();
        let owner: String = Spi::get_one("SELECT current_user::text").unwrap().unwrap();
        Spi::run("SET ROLE lc_test_invoker").unwrap();
        let seen: pgrx::JsonB =
            Spi::get_one("SELECT public.as_publisher('SELECT to_jsonb(current_user::text)')")
                .unwrap()
                .unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            seen.0,
            serde_json::json!({"inside": "lc_test_publisher", "outer": "lc_test_invoker",
                               "after": owner, "after_error": owner})
        );
    }

    #[pg_test(
        error = "lowcode: workflow calls run as the role that published the workflow, and role \"lc_test_gone\" no longer exists"
    )]
    fn call_as_a_dropped_role_is_refused() {
        Spi::run("SELECT lowcode.call_as('lc_test_gone', 'SELECT NULL::jsonb', '{}')").unwrap();
    }

    fn setup_workflow(initial: &str) {
        Spi::run(&format!(
            r#"SELECT lowcode.define_workflow('t', 'f', '{{"states": {{"{initial}": {{"initial": true}}, "done": {{"final": true}}}},
                 "transitions": [{{"name": "finish", "from": "{initial}", "to": "done"}}],
                 "rules": [{{"name": "note", "on": "created", "then": [{{"emit": {{"topic": "t.created"}}}}]}}]}}')"#
        ))
        .unwrap();
    }

    #[pg_test]
    fn workflows_compile_once_per_version() {
        setup_form();
        setup_workflow("new");
        crate::catalog::clear();
        let a = crate::catalog::current_workflow("t", "f").unwrap().unwrap();
        let b = crate::catalog::current_workflow("t", "f").unwrap().unwrap();
        assert!(std::rc::Rc::ptr_eq(&a, &b));
        assert_eq!(a.runtime.initial, "new");
        assert_eq!(a.runtime.rules_for("created"), vec![0]);
        assert_eq!(crate::catalog::stats()["workflows"], 1);
    }

    #[pg_test]
    fn define_workflow_invalidates_this_backend_at_once() {
        setup_form();
        setup_workflow("new");
        let before = crate::catalog::current_workflow("t", "f")
            .unwrap()
            .unwrap()
            .id;
        setup_workflow("fresh");
        let after = crate::catalog::current_workflow("t", "f").unwrap().unwrap();
        assert_ne!(before, after.id);
        assert_eq!(after.runtime.initial, "fresh");
        let id = Spi::get_one::<i64>(r#"SELECT lowcode.submit('t', 'f', '{"n": 3}')"#).unwrap();
        let state = Spi::get_one_with_args::<String>(
            "SELECT state FROM lowcode.records WHERE id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(state.as_deref(), Some("fresh"));
    }

    #[pg_test]
    fn the_engine_prepares_its_statements_once() {
        setup_form();
        setup_workflow("new");
        Spi::run(r#"SELECT lowcode.submit('t', 'f', '{"n": 1}')"#).unwrap();
        let kept = crate::statements::kept();
        assert!(kept >= 3, "the write path keeps its statements: {kept}");
        Spi::run(r#"SELECT lowcode.submit('t', 'f', '{"n": 2}')"#).unwrap();
        assert_eq!(crate::statements::kept(), kept);
    }

    #[pg_test]
    fn every_history_note_is_written_when_the_engine_returns() {
        setup_form();
        setup_workflow("new");
        Spi::run(r#"SELECT lowcode.submit('t', 'f', '{"n": 1}')"#).unwrap();
        assert_eq!(crate::records::history::discard(), 0);
        let rows = Spi::get_one::<i64>(
            "SELECT count(*) FROM lowcode.history WHERE action IN ('created', 'rule_action')",
        )
        .unwrap();
        assert_eq!(rows, Some(2));
    }
}
