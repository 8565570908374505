import { registerMessages } from '../../i18n';

registerMessages({
  'zh-CN': {
    'compare.priors': '对比检查', 'compare.priors.title': '列出该患者的其他检查（含可查看的其他医院检查）',
    'compare.panel': '该患者的其他检查', 'compare.none': '没有其他检查。', 'compare.with': '对比',
    'compare.failed': '对比检查无法打开：{detail}', 'compare.opened': '已打开对比检查 {date}',
    'compare.syncScroll': '同步翻页', 'compare.syncScroll.title': '按患者坐标位置同步翻页',
    'compare.link': '当前位置对齐', 'compare.link.title': '以各视口当前图像为对应位置（两次检查位置不同时使用）',
    'compare.linked': '已在当前位置对齐各视口。',
    'compare.syncVoi': '同步窗宽窗位', 'compare.syncVoi.title': '各视口使用相同的窗宽窗位',
    'compare.syncZoom': '同步缩放平移', 'compare.syncZoom.title': '各视口同步缩放与平移',
    'compare.refLines': '定位线', 'compare.refLines.title': '在其他方向的视口中显示当前图像的定位线',
    'compare.detach': '新窗口', 'compare.detach.title': '在新浏览器窗口中打开当前序列',
    'compare.popupBlocked': '浏览器阻止了新窗口，请允许本站弹出窗口。',
  },
  en: {
    'compare.priors': 'Priors', 'compare.priors.title': "List the patient's other studies (including other hospitals' you may see)",
    'compare.panel': "This patient's other studies", 'compare.none': 'No other studies.', 'compare.with': 'Compare',
    'compare.failed': 'The comparison study cannot be opened: {detail}', 'compare.opened': 'Comparison study {date} opened',
    'compare.syncScroll': 'Sync scroll', 'compare.syncScroll.title': 'Scroll together by patient position',
    'compare.link': 'Link here', 'compare.link.title': 'Treat the images shown now as the same position (when the studies are positioned differently)',
    'compare.linked': 'Viewports linked at their current positions.',
    'compare.syncVoi': 'Sync W/L', 'compare.syncVoi.title': 'Same window/level in every viewport',
    'compare.syncZoom': 'Sync zoom/pan', 'compare.syncZoom.title': 'Zoom and pan every viewport together',
    'compare.refLines': 'Ref. lines', 'compare.refLines.title': 'Show where the current image cuts viewports of other orientations',
    'compare.detach': 'New window', 'compare.detach.title': 'Open the current series in a new browser window',
    'compare.popupBlocked': 'The browser blocked the new window: allow pop-ups for this site.',
  },
});
