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
        crate::definitions_cache::clear();
        let first = crate::definitions_cache::current_form("t", "f").unwrap();
        let again = crate::definitions_cache::current_form("t", "f").unwrap();
        assert_eq!(first.version_id, again.version_id);
        assert_eq!(crate::definitions_cache::stats()["current_forms"], 1);
    }

    #[pg_test]
    fn validators_compile_once_per_version() {
        setup_form();
        crate::definitions_cache::clear();
        let id = crate::definitions_cache::current_form("t", "f")
            .unwrap()
            .version_id;
        let a = crate::definitions_cache::validator(id).unwrap();
        let b = crate::definitions_cache::validator(id).unwrap();
        assert!(std::rc::Rc::ptr_eq(&a, &b));
        assert_eq!(crate::definitions_cache::stats()["validators"], 1);
    }

    #[pg_test]
    fn define_form_invalidates_this_backend_at_once() {
        setup_form();
        let before = crate::definitions_cache::current_form("t", "f")
            .unwrap()
            .version_id;
        Spi::run(
            r#"SELECT lowcode.define_form('t', 'f', '{"properties": {"n": {"type": "integer", "minimum": 2}}}')"#,
        )
        .unwrap();
        let after = crate::definitions_cache::current_form("t", "f")
            .unwrap()
            .version_id;
        assert_ne!(before, after);
    }

    #[pg_test]
    fn the_last_form_looked_up_follows_a_new_version() {
        setup_form();
        let (before, first) = crate::definitions_cache::current_validator("t", "f").unwrap();
        let (again, second) = crate::definitions_cache::current_validator("t", "f").unwrap();
        assert_eq!(before, again);
        assert!(std::rc::Rc::ptr_eq(&first, &second));
        Spi::run(
            r#"SELECT lowcode.define_form('t', 'f', '{"properties": {"n": {"type": "integer", "minimum": 2}}}')"#,
        )
        .unwrap();
        let (after, _) = crate::definitions_cache::current_validator("t", "f").unwrap();
        assert_ne!(before, after);
        assert_eq!(
            after,
            crate::definitions_cache::current_form("t", "f").unwrap()
        );
    }

    #[pg_test]
    fn unknown_forms_and_apps_are_told_apart() {
        setup_form();
        assert!(matches!(
            crate::definitions_cache::current_form("t", "nope"),
            Err(crate::definitions_cache::CatalogError::UnknownForm(..))
        ));
        assert!(matches!(
            crate::definitions_cache::current_form("nope", "f"),
            Err(crate::definitions_cache::CatalogError::UnknownApp(_))
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

    fn role_oid(name: &str) -> pg_sys::Oid {
        Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regrole::oid", &[name.into()])
            .unwrap()
            .unwrap()
    }

    /// A call runs as its publisher, in a security-restricted operation with a pinned
    /// search_path, and lowcode's invoker is the publisher while it runs; afterwards the user,
    /// the invoker and every setting the code changed (non-locally too) are back.
    #[pg_test]
    fn call_as_switches_to_the_publisher_and_back() {
        Spi::run("CREATE ROLE lc_test_publisher").unwrap();
        Spi::run("SET search_path = public, pg_catalog").unwrap();
        let publisher = role_oid("lc_test_publisher");
        let before: String = Spi::get_one("SELECT current_user::text").unwrap().unwrap();
        let inside = crate::identity::call_as(
            publisher,
            "SELECT pg_catalog.jsonb_build_object('user', current_user::text,
                        'invoker', lowcode.invoker()::regrole::text,
                        'path', pg_catalog.current_setting('search_path'),
                        'set', pg_catalog.set_config('lowcode.replay', 'on', false),
                        'set_path', pg_catalog.set_config('search_path', 'evil, pg_catalog', false))",
            pgrx::JsonB(serde_json::json!({})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(inside.0["user"], "lc_test_publisher");
        assert_eq!(inside.0["invoker"], "lc_test_publisher");
        assert_eq!(inside.0["path"], "pg_catalog, pg_temp");
        let after: (Option<String>, Option<String>, Option<String>) = Spi::get_three(
            "SELECT current_user::text, current_setting('search_path'),
                    current_setting('lowcode.replay', true)",
        )
        .unwrap();
        assert_eq!(after.0.as_deref(), Some(before.as_str()));
        assert_eq!(after.1.as_deref(), Some("public, pg_catalog"));
        assert_ne!(after.2.as_deref(), Some("on"));
        assert_eq!(crate::identity::invoker(), unsafe {
            pg_sys::GetOuterUserId()
        });
    }

    /// A call is a security-restricted operation: no temporary objects (and no SET ROLE).
    #[pg_test(error = "cannot create temporary table within security-restricted operation")]
    fn a_call_is_security_restricted() {
        Spi::run("CREATE ROLE lc_test_publisher2").unwrap();
        Spi::run(
            "CREATE FUNCTION public.make_temp(r jsonb) RETURNS jsonb LANGUAGE plpgsql
             AS $$ BEGIN CREATE TEMP TABLE lc_trap (x int); RETURN NULL; END $$",
        )
        .unwrap();
        let publisher = role_oid("lc_test_publisher2");
        let _ = crate::identity::call_as(
            publisher,
            "SELECT public.make_temp($1)",
            pgrx::JsonB(serde_json::json!({})),
        );
    }

    /// No SQL function runs code as another role: call_as is not SQL.
    #[pg_test]
    fn call_as_is_not_sql() {
        let n: i64 = Spi::get_one(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'lowcode'::regnamespace
                AND proname IN ('call_as', 'call_as_invoker')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 0);
    }

    #[pg_test]
    fn call_as_a_dropped_role_is_refused() {
        let result = crate::identity::call_as(
            pg_sys::Oid::from(4_000_000_000u32),
            "SELECT NULL::jsonb",
            pgrx::JsonB(serde_json::json!({})),
        );
        assert!(matches!(
            result,
            Err(crate::identity::IdentityError::NoSuchRole(_))
        ));
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
        crate::definitions_cache::clear();
        let a = crate::definitions_cache::current_workflow("t", "f")
            .unwrap()
            .unwrap();
        let b = crate::definitions_cache::current_workflow("t", "f")
            .unwrap()
            .unwrap();
        assert!(std::rc::Rc::ptr_eq(&a, &b));
        assert_eq!(a.runtime.initial, "new");
        assert_eq!(a.runtime.rules_for("created"), vec![0]);
        assert_eq!(crate::definitions_cache::stats()["workflows"], 1);
    }

    #[pg_test]
    fn define_workflow_invalidates_this_backend_at_once() {
        setup_form();
        setup_workflow("new");
        let before = crate::definitions_cache::current_workflow("t", "f")
            .unwrap()
            .unwrap()
            .id;
        setup_workflow("fresh");
        let after = crate::definitions_cache::current_workflow("t", "f")
            .unwrap()
            .unwrap();
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
        assert_eq!(crate::journal::discard(), 0);
        let rows = Spi::get_one::<i64>(
            "SELECT count(*) FROM lowcode.history WHERE action IN ('created', 'rule_action')",
        )
        .unwrap();
        assert_eq!(rows, Some(2));
    }
}
