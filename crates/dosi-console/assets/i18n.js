// English and Korean strings. The language follows the browser unless the
// operator picked one (kept in localStorage).

const STRINGS = {
  en: {
    title: 'Operations Console', entities: 'Entities', alerts: 'Alerts', warnings: 'Warnings',
    updates: 'Updates/s', simTime: 'City time', connecting: 'Connecting…', live: 'Live',
    offline: 'Reconnecting…', layers: 'Layers', scenarios: 'Scenarios', speed: 'Speed',
    devices: 'Devices', legend: 'Status', sev0: 'Normal', sev1: 'In use / active', sev2: 'Warning',
    sev3: 'Alert', sevn: 'No status / unknown', fit: 'Fit to data', browse: 'Browse', details: 'Details',
    searchHint: 'Search id, type or attribute…', allTypes: 'All types', search: 'Search',
    noSelection: 'Select an entity on the map or in the list.', results: '{n} entities',
    moreResults: '{n} of {total} entities', noResults: 'No entity matches.',
    attributes: 'Attributes', relationships: 'Relationships', raw: 'NGSI-LD JSON',
    showRaw: 'Show NGSI-LD JSON', hideRaw: 'Hide NGSI-LD JSON', history: 'History',
    custom: 'Custom', apply: 'Apply', noData: 'No history in this range', points: '{n} points',
    loading: 'Loading…', zoom: 'zoom', clusters: 'clusters', shown: 'shown',
    started: 'Scenario started: {kind}', failed: 'Failed: {msg}', notFound: 'Entity not found',
    resync: 'Stream fell behind; reloading the map…', modified: 'modified', active: 'Active',
    chartHint: 'Click a numeric attribute to chart it.', observedAt: 'observed',
    'kind.flood': 'Flood', 'kind.earthquake': 'Earthquake', 'kind.crash': 'Road crash',
    'kind.pollution': 'Haze', 'kind.bell': 'Emergency bell', 'kind.sos': 'SOS wander',
    'kind.camera-offline': 'Camera offline',
    'pack.parking': 'Parking', 'pack.traffic': 'Traffic', 'pack.air-quality': 'Air quality',
    'pack.flood': 'Flood', 'pack.earthquake': 'Earthquake', 'pack.security': 'Security',
    'pack.social-safety': 'Social safety', 'pack.smart-farm': 'Smart farm', 'pack.cctv': 'CCTV',
    'pack.other': 'Other',
  },
  ko: {
    title: '통합 관제 콘솔', entities: '엔티티', alerts: '경보', warnings: '주의',
    updates: '갱신/초', simTime: '도시 시각', connecting: '연결 중…', live: '실시간',
    offline: '재연결 중…', layers: '레이어', scenarios: '시나리오', speed: '배속',
    devices: '장치', legend: '상태', sev0: '정상', sev1: '사용 중 / 동작', sev2: '주의',
    sev3: '경보', sevn: '상태 없음 / 알 수 없음', fit: '전체 보기', browse: '탐색', details: '상세',
    searchHint: 'ID, 유형, 속성 검색…', allTypes: '모든 유형', search: '검색',
    noSelection: '지도나 목록에서 엔티티를 선택하세요.', results: '엔티티 {n}개',
    moreResults: '엔티티 {total}개 중 {n}개', noResults: '일치하는 엔티티가 없습니다.',
    attributes: '속성', relationships: '관계', raw: 'NGSI-LD JSON',
    showRaw: 'NGSI-LD JSON 보기', hideRaw: 'NGSI-LD JSON 숨기기', history: '이력',
    custom: '직접 지정', apply: '적용', noData: '이 기간에 이력이 없습니다', points: '{n}개 지점',
    loading: '불러오는 중…', zoom: '줌', clusters: '클러스터', shown: '표시',
    started: '시나리오 시작: {kind}', failed: '실패: {msg}', notFound: '엔티티를 찾을 수 없습니다',
    resync: '스트림이 밀려 지도를 다시 불러옵니다…', modified: '수정', active: '진행 중',
    chartHint: '숫자 속성을 누르면 그래프가 표시됩니다.', observedAt: '관측',
    'kind.flood': '홍수', 'kind.earthquake': '지진', 'kind.crash': '교통사고',
    'kind.pollution': '연무', 'kind.bell': '비상벨', 'kind.sos': 'SOS 배회',
    'kind.camera-offline': '카메라 장애',
    'pack.parking': '주차', 'pack.traffic': '교통', 'pack.air-quality': '대기질',
    'pack.flood': '홍수', 'pack.earthquake': '지진', 'pack.security': '방범',
    'pack.social-safety': '사회안전', 'pack.smart-farm': '스마트팜', 'pack.cctv': 'CCTV',
    'pack.other': '기타',
  },
};

const listeners = [];
let lang = pick();

function pick() {
  const saved = globalThis.localStorage?.getItem('dosi.lang');
  if (saved && STRINGS[saved]) return saved;
  const nav = (navigator.languages || [navigator.language || 'en']).join(',').toLowerCase();
  return nav.startsWith('ko') ? 'ko' : 'en';
}

/** The current language code. */
export function currentLang() { return lang; }

/** The string `key` in the current language, `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ''));
}

/** Switches language, rewrites the page's static strings, tells listeners. */
export function setLang(l) {
  if (!STRINGS[l]) return;
  lang = l;
  localStorage.setItem('dosi.lang', l);
  apply();
  for (const f of listeners) f(l);
}

/** Calls `f` after every language switch. */
export function onLang(f) { listeners.push(f); }

/** Applies the current language to `data-i18n*` elements. */
export function apply(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

/** A number in the current locale. */
export function fmtNum(n, digits = 0) {
  return Number(n).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB', { maximumFractionDigits: digits });
}
