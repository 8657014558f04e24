// examples/web/src/main.jsx — the pages: sign in, the forms, a form (RJSF), a record, the inbox.
// Everything shown comes from the server's JSON API (server.py), which asks lowcode.

import { createRoot } from 'react-dom/client';
import { Component, useCallback, useEffect, useMemo, useState } from 'react';
import Form from '@rjsf/core';
import { englishStringTranslator } from '@rjsf/utils';
import { customizeValidator } from '@rjsf/validator-ajv8';
import { LOCALES, ajvFor, buildUiSchema, errorSchemaOf, localizeRefs } from './uischema.js';
import { MESSAGES, RJSF_ZH } from './messages.js';

// --- small helpers --------------------------------------------------------------------------------

async function call(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  let json = null;
  try {
    json = await res.json();
  } catch (e) {
    json = { message: `${res.status} ${res.statusText}` };
  }
  if (res.status === 401 && window.location.pathname !== '/login') {
    window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname));
  }
  return { ok: res.ok, status: res.status, body: json };
}

function navigate(path) {
  window.history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

function Link({ to, children, ...rest }) {
  return (
    <a
      href={to}
      onClick={(e) => {
        if (e.button === 0 && !e.metaKey && !e.ctrlKey) {
          e.preventDefault();
          navigate(to);
        }
      }}
      {...rest}
    >
      {children}
    </a>
  );
}

function usePath() {
  const [path, setPath] = useState(window.location.pathname + window.location.search);
  useEffect(() => {
    const on = () => setPath(window.location.pathname + window.location.search);
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return path;
}

function initialLocale() {
  const q = new URLSearchParams(window.location.search).get('lang');
  const saved = q || window.localStorage.getItem('lowcode.locale');
  return LOCALES.includes(saved) ? saved : 'en';
}

const validators = new Map();
function validatorFor(draft) {
  const { name, options } = ajvFor(draft);
  if (!validators.has(name)) validators.set(name, customizeValidator(options));
  return { name, validator: validators.get(name) };
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : '';
}

// A form RJSF cannot render (a schema feature it does not know) shows why, not a blank page.
class FormBoundary extends Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }
  static getDerivedStateFromError(error) {
    return { error };
  }
  render() {
    if (this.state.error) {
      return (
        <p id="form-error" className="notice error">
          {this.props.t.cannotRender}: {String(this.state.error.message || this.state.error)}
        </p>
      );
    }
    return this.props.children;
  }
}

// --- pages --------------------------------------------------------------------------------------

function Login({ t, session, onLogin }) {
  const [user, setUser] = useState('');
  const [error, setError] = useState(null);
  const signIn = async (name) => {
    const res = await call('POST', '/api/login', { user: name });
    if (!res.ok) return setError(res.body.message);
    onLogin(res.body.user);
    const next = new URLSearchParams(window.location.search).get('next');
    navigate(next && next.startsWith('/') && next !== '/login' ? next : '/');
  };
  return (
    <section className="login">
      <h1>{t.signIn}</h1>
      <p className="warning" id="no-passwords">{t.noPasswords}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signIn(user.trim());
        }}
      >
        <label htmlFor="user">{t.userName}</label>
        <input id="user" value={user} autoComplete="off" onChange={(e) => setUser(e.target.value)} />
        <button id="login" type="submit" className="btn btn-primary">
          {t.signIn}
        </button>
      </form>
      <p className="choices">
        {(session.users || []).map((u) => (
          <button key={u} type="button" className="btn user-choice" onClick={() => signIn(u)}>
            {u}
          </button>
        ))}
      </p>
      {error && <p className="notice error">{error}</p>}
    </section>
  );
}

function Home({ t, session }) {
  const [forms, setForms] = useState(null);
  useEffect(() => {
    call('GET', '/api/forms').then((res) => setForms(res.ok ? res.body : []));
  }, []);
  if (forms === null) return <p>{t.loading}</p>;
  return (
    <section>
      <h1>{t.forms}</h1>
      {forms.length === 0 ? (
        <p>{t.noForms}</p>
      ) : (
        <ul id="forms">
          {forms.map((f) => (
            <li key={f.form}>
              <Link to={`/forms/${session.app}/${f.form}`}>{f.title || f.form}</Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function TaskTable({ t, tasks, id, action }) {
  if (!tasks || tasks.length === 0) return <p id={id} className="empty">{t.nothing}</p>;
  return (
    <table id={id} className="tasks">
      <thead>
        <tr>
          <th>{t.task}</th>
          <th>{t.record}</th>
          <th>{t.pool}</th>
          <th>{t.status}</th>
          <th>{t.due}</th>
          {action && <th />}
        </tr>
      </thead>
      <tbody>
        {tasks.map((task) => (
          <tr key={task.id} data-task={task.id} data-record={task.record_id}>
            <td>
              #{task.id} {task.title || task.name}
            </td>
            <td>
              {task.record_id ? <Link to={`/records/${task.record_id}`}>{task.record_id}</Link> : null}
            </td>
            <td>{task.pool || task.assignee || ''}</td>
            <td className="status">{task.status || 'open'}</td>
            <td>{when(task.due_at)}</td>
            {action && <td className="actions">{action(task)}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RecordView({ t, view }) {
  const { record, tasks } = view;
  return (
    <div id="record" data-record={record.id} data-state={record.state}>
      <p className="notice ok">{t.saved(record.id)}</p>
      <dl>
        <dt>{t.state}</dt>
        <dd id="record-state">{record.state}</dd>
        <dt>{t.data}</dt>
        <dd>
          <pre id="record-data">{JSON.stringify(record.data, null, 2)}</pre>
        </dd>
      </dl>
      <h2>{t.tasks}</h2>
      {tasks.length === 0 ? (
        <p id="record-tasks" className="empty">{t.noTasks}</p>
      ) : (
        <TaskTable t={t} tasks={tasks.map((x) => ({ ...x, record_id: record.id }))} id="record-tasks" />
      )}
    </div>
  );
}

function RecordPage({ t, id }) {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    call('GET', `/api/records/${id}`).then((res) => (res.ok ? setView(res.body) : setError(res.body.message)));
  }, [id]);
  if (error) return <p className="notice error">{error}</p>;
  if (!view) return <p>{t.loading}</p>;
  return (
    <section>
      <h1>
        {t.record} {id}
      </h1>
      <RecordView t={t} view={view} />
    </section>
  );
}

function FormPage({ t, locale, app, form }) {
  const [spec, setSpec] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [formData, setFormData] = useState({});
  const [clientValidation, setClientValidation] = useState(true);
  const [dbErrors, setDbErrors] = useState(null); // issues of the last refusal
  const [stale, setStale] = useState(null);
  const [failure, setFailure] = useState(null);
  const [saved, setSaved] = useState(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    setSpec(null);
    setStale(null);
    setDbErrors(null);
    setFailure(null);
    call('GET', `/api/forms/${app}/${form}`).then((res) => {
      if (res.ok) setSpec({ ...res.body, schema: localizeRefs(res.body.schema) });
      else setLoadError(res.body.message || `${res.status}`);
    });
  }, [app, form]);
  useEffect(load, [load]);

  const uiSchema = useMemo(() => (spec ? buildUiSchema(spec, locale, { submit: t.submit }) : {}), [spec, locale, t]);
  const { name: validatorName, validator } = useMemo(() => validatorFor(spec && spec.draft), [spec]);
  const extraErrors = useMemo(() => (dbErrors ? errorSchemaOf(dbErrors) : undefined), [dbErrors]);
  const translateString = useMemo(
    () => (locale === 'zh-CN' ? (s, params) => englishStringTranslator(RJSF_ZH[s] || s, params) : undefined),
    [locale],
  );

  useEffect(() => {
    if (spec) document.title = uiSchema['ui:title'] || form;
  }, [spec, uiSchema, form]);
  // The answer to a submit is shown above the form: bring it into view.
  useEffect(() => {
    const el = document.querySelector('#stale, #db-errors, #failure, #record');
    if (el) el.scrollIntoView({ block: 'start', behavior: 'instant' });
  }, [stale, dbErrors, failure, saved]);

  if (loadError) return <p className="notice error" id="load-error">{loadError}</p>;
  if (!spec) return <p>{t.loading}</p>;

  const onSubmit = async ({ formData: data }) => {
    setBusy(true);
    setDbErrors(null);
    setFailure(null);
    setSaved(null);
    const res = await call('POST', `/api/forms/${app}/${form}/records`, {
      data: data || {},
      expected_version: spec.version,
    });
    setBusy(false);
    if (res.ok) {
      setSaved(res.body);
    } else if (res.status === 422 && res.body.error === 'invalid') {
      setDbErrors(res.body.issues && res.body.issues.length ? res.body.issues : [{ field: '', message: res.body.message }]);
    } else if (res.status === 409 && res.body.error === 'stale') {
      setStale(res.body);
    } else {
      setFailure(res.body.message || `${res.status}`);
    }
  };

  return (
    <section className="form-page" data-version={spec.version} data-draft={spec.draft || ''}>
      <div className="form-meta">
        <span>
          {app}.{form}, {t.version} <span id="form-version">{spec.version}</span>
        </span>
        <span>
          {t.validator}: <span id="validator-name">{validatorName}</span>
        </span>
        <label className="switch" title={t.clientValidationHelp}>
          <input
            id="client-validation"
            type="checkbox"
            checked={clientValidation}
            onChange={(e) => setClientValidation(e.target.checked)}
          />{' '}
          {t.clientValidation}
        </label>
      </div>
      {stale && (
        <div id="stale" className="notice error" role="alert">
          <p>{t.stale(spec.version)}</p>
          <p className="db-message">{stale.message}</p>
          <button id="reload" type="button" className="btn" onClick={load}>
            {t.reload}
          </button>
        </div>
      )}
      {dbErrors && (
        <div id="db-errors" className="notice error" role="alert">
          <p>{t.refused(dbErrors.length)}</p>
          <ul>
            {dbErrors.map((i, n) => (
              <li key={n} data-field={i.field}>
                <code>{i.field || '/'}</code> {i.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {failure && (
        <p id="failure" className="notice error" role="alert">
          {failure}
        </p>
      )}
      {saved ? (
        <>
          <RecordView t={t} view={saved} />
          <p>
            <button
              id="another"
              type="button"
              className="btn"
              onClick={() => {
                setSaved(null);
                setFormData({});
              }}
            >
              {t.newRecord}
            </button>{' '}
            <Link to="/inbox">{t.toInbox}</Link>
          </p>
        </>
      ) : (
        // Keyed by the locale: RJSF keeps its registry (and translateString) from its first render.
        <FormBoundary t={t} key={`${locale} ${spec.version_id}`}>
          <Form
            schema={spec.schema}
            uiSchema={uiSchema}
            formData={formData}
            validator={validator}
            noValidate={!clientValidation}
            noHtml5Validate
            extraErrors={extraErrors}
            showErrorList={dbErrors ? false : 'top'}
            translateString={translateString}
            disabled={busy}
            onChange={(e) => setFormData(e.formData)}
            onSubmit={onSubmit}
          />
        </FormBoundary>
      )}
    </section>
  );
}

function Inbox({ t }) {
  const [inbox, setInbox] = useState(null);
  const [notice, setNotice] = useState(null);
  const [error, setError] = useState(null);
  const [outcomes, setOutcomes] = useState({});

  // `lost`: a task someone else won a moment ago. Claims never wait, so the winner's transaction
  // may not have committed yet when the loser's list is read again: leave it out of that list.
  const load = useCallback((lost) => {
    call('GET', '/api/inbox').then((res) => {
      if (!res.ok) return setError(res.body.message);
      const body = res.body;
      if (lost) body.claimable = body.claimable.filter((x) => x.id !== lost);
      setInbox(body);
    });
  }, []);
  useEffect(() => load(), [load]);

  const claim = async (task) => {
    const res = await call('POST', `/api/tasks/${task.id}/claim`);
    if (res.ok) setNotice({ kind: 'ok', task: task.id, text: t.claimed(task.id) });
    else if (res.status === 409) setNotice({ kind: 'error', task: task.id, text: t.taken(task.id) });
    else setNotice({ kind: 'error', task: task.id, text: res.body.message });
    load(res.status === 409 ? task.id : undefined);
  };
  const complete = async (task, outcome) => {
    const res = await call('POST', `/api/tasks/${task.id}/complete`, { outcome });
    if (res.ok) setNotice({ kind: 'ok', task: task.id, text: t.completed(task.id, outcome) });
    else setNotice({ kind: 'error', task: task.id, text: res.body.message });
    load();
  };

  if (error) return <p className="notice error">{error}</p>;
  if (!inbox) return <p>{t.loading}</p>;
  return (
    <section className="inbox">
      <h1>{t.inbox}</h1>
      <p>
        <button id="refresh" type="button" className="btn" onClick={() => load()}>
          {t.refresh}
        </button>
      </p>
      {notice && (
        <p id="notice" className={`notice ${notice.kind}`} data-task={notice.task} role="status">
          {notice.text}
        </p>
      )}
      <h2>{t.claimable}</h2>
      <TaskTable
        t={t}
        id="claimable"
        tasks={inbox.claimable}
        action={(task) => (
          <button type="button" className="btn btn-primary claim" onClick={() => claim(task)}>
            {t.claim}
          </button>
        )}
      />
      <h2>{t.mine}</h2>
      <TaskTable
        t={t}
        id="mine"
        tasks={inbox.mine}
        action={(task) =>
          task.outcomes && task.outcomes.length ? (
            task.outcomes.map((o) => (
              <button key={o} type="button" className="btn complete" data-outcome={o} onClick={() => complete(task, o)}>
                {o}
              </button>
            ))
          ) : (
            <span>
              <input
                className="outcome"
                placeholder={t.outcome}
                value={outcomes[task.id] || ''}
                onChange={(e) => setOutcomes({ ...outcomes, [task.id]: e.target.value })}
              />
              <button
                type="button"
                className="btn complete"
                onClick={() => complete(task, (outcomes[task.id] || '').trim() || 'done')}
              >
                {t.complete}
              </button>
            </span>
          )
        }
      />
    </section>
  );
}

// --- the shell ----------------------------------------------------------------------------------

function App() {
  const path = usePath();
  const [locale, setLocale] = useState(initialLocale);
  const [session, setSession] = useState(null);
  const t = MESSAGES[locale];

  useEffect(() => {
    call('GET', '/api/session').then((res) => setSession(res.body));
  }, []);
  useEffect(() => {
    document.documentElement.lang = locale;
    window.localStorage.setItem('lowcode.locale', locale);
  }, [locale]);

  if (!session) return <p>{t.loading}</p>;
  const pathname = path.split('?')[0];
  let page;
  let m;
  if (pathname === '/login' || !session.user) {
    page = <Login t={t} session={session} onLogin={(user) => setSession({ ...session, user })} />;
  } else if ((m = pathname.match(/^\/forms\/([a-z][a-z0-9_]*)\/([a-z][a-z0-9_]*)$/))) {
    page = <FormPage key={pathname} t={t} locale={locale} app={m[1]} form={m[2]} />;
  } else if ((m = pathname.match(/^\/records\/(\d+)$/))) {
    page = <RecordPage key={pathname} t={t} id={m[1]} />;
  } else if (pathname === '/inbox') {
    page = <Inbox t={t} />;
  } else {
    page = <Home t={t} session={session} />;
  }
  const signOut = async () => {
    await call('POST', '/api/logout');
    setSession({ ...session, user: null });
    navigate('/login');
  };
  return (
    <>
      <header>
        <Link to="/" className="brand">
          {t.app}
        </Link>
        {session.user && (
          <nav>
            <Link to="/">{t.forms}</Link>
            <Link to="/inbox" id="nav-inbox">
              {t.inbox}
            </Link>
          </nav>
        )}
        <span className="spacer" />
        <span className="locales">
          {LOCALES.map((l) => (
            <button
              key={l}
              id={`locale-${l}`}
              type="button"
              className={l === locale ? 'btn active' : 'btn'}
              onClick={() => setLocale(l)}
            >
              {l === 'en' ? 'English' : '中文'}
            </button>
          ))}
        </span>
        {session.user && (
          <span className="who">
            {t.signedInAs} <b id="user-name">{session.user}</b>{' '}
            <button id="logout" type="button" className="btn" onClick={signOut}>
              {t.signOut}
            </button>
          </span>
        )}
      </header>
      <main>{page}</main>
    </>
  );
}

createRoot(document.getElementById('root')).render(<App />);
